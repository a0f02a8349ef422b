// Regression test: an application that sent dc_client an ADD with a payload under 8 bytes had it
// forwarded, and the cache server closes a connection on such an ADD (no response, as the C
// server does). That one bad request took down the shared upstream connection: every other
// application's outstanding requests were answered 0x02 and new ones got "no server" until the
// reconnect. dc_client now refuses it itself and closes only that application's connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { CacheClient } from '../../src/cache/client';
import { Upstream } from '../../src/cache/proxy/upstream';
import { proxyHandler } from '../../src/cache/proxy/app_session';
import { createLogger, type Level, type LogSink } from '../../src/log/index';
import { encodeMessage, Operation, Status } from '../../src/cache/wire/index';
import { RawPeer, startCacheServer } from './cache_server';

test('dc_client proxy closes only the application that sends a short ADD and keeps the upstream connection', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const lines: string[] = [];
  const log = createLogger('dc_client-test', { level: 'info' });
  const sink: LogSink = { write: (level: Level, line: string) => lines.push(`${level}: ${line}`) };
  log.setSinks([sink]);
  const target = server.target as { host: string; port: number };
  const states: string[] = [];
  const upstream = new Upstream({ kind: 'tcp', host: target.host, port: target.port }, { retryMs: 60_000, log, onState: (s) => states.push(s) });
  upstream.start();
  t.after(() => upstream.stop());
  let nextId = 1;
  const sockets = new Set<net.Socket>();
  const serve = proxyHandler(upstream, { log, idleMs: 0 });
  const proxy = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    void serve({ stream: socket, peer: { kind: 'unix' }, id: nextId++, listener: 'main' }).finally(() => socket.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    proxy.close(() => resolve());
  }));
  const proxyTarget = { host: '127.0.0.1', port: (proxy.address() as net.AddressInfo).port };

  const app = await CacheClient.connect(proxyTarget);
  t.after(() => app.destroy());
  assert.equal(await app.add('k', 'v', 600_000), Status.OK);

  const bad = await RawPeer.connect(proxyTarget);
  t.after(() => bad.destroy());
  await bad.write(encodeMessage({ isResponse: false, uid: 77, operation: Operation.ADD }, Buffer.from([0, 0, 1, 0])));
  assert.equal((await bad.closed()).length, 0, 'nothing is sent back for a malformed request');

  assert.deepEqual(await app.get('k'), Buffer.from('v'));
  assert.equal(upstream.connected, true);
  assert.deepEqual(states, ['connected'], 'the upstream connection was lost');
  assert.equal(server.engine.stats.dropped, 0, 'the short ADD reached the cache server');
  assert.ok(lines.some((l) => /^warning: bad request .*why="ADD payload of 4 bytes is shorter than 8"/.test(l)), lines.join('\n'));
});
