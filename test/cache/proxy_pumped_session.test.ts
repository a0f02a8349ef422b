// dc_client's application sessions on the native socket pump (the path every application takes
// when dc_client's listeners accept in the pump): the application's uids and order kept through a
// pipeline deeper than MAX_PIPELINED, an application that does not read its answers, a half-close,
// and the pool's limit queueing an application until another leaves.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pumpedListeners } from '../../src/activation/pumped_listener';
import { ConnectionPool } from '../../src/activation/serve';
import { bindListeners } from '../../src/activation/standalone';
import { pumpedSockets } from '../../src/activation/socket_pump';
import { Upstream } from '../../src/cache/proxy/upstream';
import { pumpedProxyHandler } from '../../src/cache/proxy/app_session';
import { createLogger } from '../../src/log/index';
import { Operation } from '../../src/cache/wire/index';
import { startCacheServer, type TestServer } from './cache_server';
import { connectPeer, request, Responses, storeSession as storeOne, takeFlood, until, whenSteady } from './pumped_peer';

const SESSION = Buffer.alloc(4096, 0x5a);
const ID = Buffer.from('proxy-pumped-id');

interface Proxy {
  readonly path: string;
  readonly pool: ConnectionPool;
  readonly server: TestServer;
}

/** A cache server, one Upstream to it, and dc_client's sessions behind a pump listener on a unix socket. */
async function startProxy(t: { after(fn: () => unknown): void }, maxConnections: number): Promise<Proxy> {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const log = createLogger('dc_client-test', { level: 'err' });
  const target = server.target as { host: string; port: number };
  const upstream = new Upstream({ kind: 'tcp', host: target.host, port: target.port }, { retryMs: 60_000, log });
  const connected = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (!upstream.connected) return;
      clearInterval(check);
      resolve();
    }, 5);
  });
  upstream.start();
  t.after(() => upstream.stop());
  await connected;
  const pool = new ConnectionPool({ handlers: { main: () => Promise.reject(new Error('not on the pump')) }, log, maxConnections });
  const handler = pumpedProxyHandler(upstream, { log, idleMs: 0 });
  const opener = pumpedListeners((socket, peer, name) => void pool.admitPumped(socket, peer, name, handler));
  assert.ok(opener !== undefined, 'the pump opens on the main thread');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxy-pumped-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'scache');
  const [listener] = await bindListeners([{ kind: 'unix', path: socketPath, name: 'main' }], opener);
  t.after(() => listener!.close());
  return { path: socketPath, pool, server };
}

const connect = (proxy: Proxy): Promise<net.Socket> => connectPeer({ path: proxy.path });

/** A session stored through the proxy, once the proxy let that connection go. */
async function storeSession(proxy: Proxy): Promise<void> {
  await storeOne({ path: proxy.path }, ID, SESSION);
  await until(() => proxy.pool.active === 0);
}

test('proxy session on the pump answers a thousand pipelined requests of one write with their uids in order', async (t) => {
  const proxy = await startProxy(t, 0);
  await storeSession(proxy);
  const before = pumpedSockets();
  const socket = await connect(proxy);
  t.after(() => socket.destroy());
  const answers = new Responses(socket);
  socket.write(Buffer.concat(Array.from({ length: 1000 }, (_, i) => request(5000 + i, i % 2 === 0 ? Operation.GET : Operation.HAVE, ID))));
  const got = await answers.take(1000);
  assert.equal(pumpedSockets(), before + 1, 'the application is served by the native pump');
  got.forEach((r, i) => {
    assert.equal(r.uid, 5000 + i);
    assert.equal(r.length, i % 2 === 0 ? SESSION.length : 1);
  });
});

test('proxy session on the pump stops forwarding and loses no answer when the application does not read a 4 KB GET flood', async (t) => {
  const proxy = await startProxy(t, 0);
  await storeSession(proxy);
  const socket = await connect(proxy);
  t.after(() => socket.destroy());
  socket.pause();
  const count = 20_000; // 80 MB of answers, far above every socket buffer
  const before = proxy.server.engine.stats.operations;
  socket.write(Buffer.concat(Array.from({ length: count }, (_, i) => request(i, Operation.GET, ID))));
  const seen = await whenSteady(() => proxy.server.engine.stats.operations, before);
  assert.ok(seen - before < count / 2, `the proxy forwarded ${seen - before} of ${count} requests whose answers nobody read`);
  await takeFlood(socket, count, SESSION.length);
});

test('proxy session on the pump answers every request of a half-closed application, then ends its side', async (t) => {
  const proxy = await startProxy(t, 0);
  await storeSession(proxy);
  const socket = await connect(proxy);
  t.after(() => socket.destroy());
  const answers = new Responses(socket);
  socket.end(Buffer.concat(Array.from({ length: 100 }, (_, i) => request(i, Operation.HAVE, ID))));
  const got = await answers.take(100);
  assert.deepEqual(got.map((r) => r.uid), Array.from({ length: 100 }, (_, i) => i));
  await answers.end();
  await until(() => proxy.pool.active === 0);
});

test('proxy session on the pump waits in the queue while the pool is full and is served once an application leaves', async (t) => {
  const proxy = await startProxy(t, 1);
  await storeSession(proxy);
  const first = await connect(proxy);
  t.after(() => first.destroy());
  const firstAnswers = new Responses(first);
  first.write(request(1, Operation.HAVE, ID));
  await firstAnswers.take(1);
  const second = await connect(proxy);
  t.after(() => second.destroy());
  const secondAnswers = new Responses(second);
  second.write(request(2, Operation.GET, ID));
  await until(() => proxy.pool.queued === 1);
  first.end();
  const [got] = await secondAnswers.take(1);
  assert.equal(got!.uid, 2);
  assert.equal(got!.length, SESSION.length);
  assert.equal(proxy.pool.queued, 0);
});
