// Clients that disappear: mid-request (a partial 32 KB ADD, then FIN or RST) and mid-response
// (megabytes of pipelined GET answers queued, a few read, then the socket destroyed). The server
// must release each connection at once, store nothing half-received, and keep serving others.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheClient } from '../../src/cache/client';
import { encodeAddPayload, encodeMessage, Operation, Status } from '../../src/cache/wire/index';
import { startCacheServer, type TestServer } from './cache_server';

async function untilConnections(server: TestServer, left: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (server.engine.stats.connections > left) {
    if (Date.now() > deadline) throw new Error(`${server.engine.stats.connections} connections still open after ${ms} ms`);
    await sleep(10);
  }
}

function connect(target: TestServer['target']): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(target as net.NetConnectOpts, () => resolve(s));
    s.once('error', reject);
  });
}

test('session releases a client that disappears mid-request and stores nothing of it', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const good = await CacheClient.connect(server.target);
  t.after(() => good.destroy());
  const add = encodeMessage(
    { isResponse: false, uid: 1, operation: Operation.ADD },
    encodeAddPayload({ timeoutMs: 60000, id: Buffer.from('half'), data: Buffer.alloc(32768 - 8 - 4, 9) }),
  );
  for (let i = 0; i < 60; i++) {
    const s = await connect(server.target);
    s.on('error', () => {});
    const cut = 1 + Math.floor((add.length - 2) * (i / 59));
    await new Promise<void>((resolve) => s.write(add.subarray(0, cut), () => resolve()));
    // Alternate a reset (SO_LINGER 0) and a plain close.
    if (i % 2 === 0) s.resetAndDestroy();
    else s.destroy();
    assert.equal(await good.have('half'), false, `cut at ${cut}`);
  }
  await untilConnections(server, 1);
  assert.equal(server.engine.stats.connections, 1, 'only the good client is left');
  assert.equal(await good.add('half', 'whole', 60000), Status.OK);
  assert.deepEqual(await good.get('half'), Buffer.from('whole'));
});

test('session releases a client that disappears mid-response while megabytes of answers are queued', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const good = await CacheClient.connect(server.target);
  t.after(() => good.destroy());
  const data = Buffer.alloc(30000, 5);
  assert.equal(await good.add('big', data, 600000), Status.OK);
  const gets = Buffer.concat(Array.from({ length: 300 }, (_, i) => encodeMessage({ isResponse: false, uid: i, operation: Operation.GET }, Buffer.from('big'))));
  for (let i = 0; i < 20; i++) {
    const s = await connect(server.target);
    s.on('error', () => {});
    s.write(gets);
    // Read a little of the ~9 MB of answers, then vanish.
    await new Promise<void>((resolve) => {
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got > 4096 * (1 + i)) {
          if (i % 2 === 0) s.resetAndDestroy();
          else s.destroy();
          resolve();
        }
      });
    });
    assert.deepEqual(await good.get('big'), data);
  }
  await untilConnections(server, 1);
  assert.ok(server.engine.stats.operations >= 20 + 1, 'answers were produced');
});

test('session survives 200 clients that connect and vanish at once', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const sockets = await Promise.all(Array.from({ length: 200 }, () => connect(server.target)));
  sockets.forEach((s, i) => {
    s.on('error', () => {});
    if (i % 3 === 0) s.write(encodeMessage({ isResponse: false, uid: i, operation: Operation.GET }, Buffer.from('x')).subarray(0, 5));
    if (i % 2 === 0) s.resetAndDestroy();
    else s.destroy();
  });
  await untilConnections(server, 0);
  const good = await CacheClient.connect(server.target);
  t.after(() => good.destroy());
  assert.equal(await good.have('x'), false);
});
