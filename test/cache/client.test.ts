import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { CacheClient } from '../../src/cache/client';
import { DistkitError } from '../../src/errors';
import { encodeMessage, MessageReader, Operation, Status } from '../../src/cache/wire/index';
import { startCacheServer } from './cache_server';

for (const unix of [false, true]) {
  test(`client adds, gets, checks and removes sessions over ${unix ? 'a unix socket' : 'TCP'}`, async (t) => {
    const server = await startCacheServer({ unix });
    t.after(() => server.close());
    const client = await CacheClient.connect(server.target);
    t.after(() => client.destroy());
    assert.equal(await client.add('id-1', 'data-1', 60000), Status.OK);
    assert.equal(await client.add('id-1', 'other', 60000), Status.ADD_MATCHING_SESSION);
    assert.equal(await client.add('', 'x', 60000), Status.ADD_ID_RANGE);
    assert.equal(await client.add('t', 'x', 604_800_001), Status.ADD_TIMEOUT_RANGE);
    assert.deepEqual(await client.get('id-1'), Buffer.from('data-1'));
    assert.equal(await client.get('nope'), null);
    assert.equal(await client.have('id-1'), true);
    assert.equal(await client.remove('id-1'), true);
    assert.equal(await client.remove('id-1'), false);
    assert.equal(await client.have('id-1'), false);
    await client.close();
  });
}

test('client matches 1000 pipelined responses to their requests in order', async (t) => {
  const server = await startCacheServer({ capacity: 2000 });
  t.after(() => server.close());
  const client = await CacheClient.connect(server.target);
  t.after(() => client.destroy());
  const adds = Array.from({ length: 500 }, (_, i) => client.add(`k${i}`, Buffer.alloc(i * 60 + 1, i & 0xff), 60000));
  const gets = Array.from({ length: 500 }, (_, i) => client.get(`k${i}`));
  assert.ok(client.pending > 900);
  assert.ok((await Promise.all(adds)).every((s) => s === Status.OK));
  const data = await Promise.all(gets);
  data.forEach((d, i) => assert.deepEqual(d, Buffer.alloc(i * 60 + 1, i & 0xff), `k${i}`));
  assert.equal(client.pending, 0);
});

test('client adopts an already-connected stream', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const socket = net.connect(server.target as net.NetConnectOpts);
  const client = await CacheClient.connect(socket);
  t.after(() => client.destroy());
  assert.equal(await client.have('x'), false);
});

/** A real TCP peer that answers each request with whatever `reply` returns. */
async function fakeServer(reply: (uid: number, operation: Operation) => Buffer): Promise<{ target: { host: string; port: number }; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const reader = new MessageReader('request');
    socket.on('data', (chunk) => {
      reader.push(chunk);
      for (let r = reader.next(); r.kind === 'ok'; r = reader.next()) socket.write(reply(r.value.uid, r.value.operation));
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    target: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

test('client rejects every outstanding request when a response carries the wrong uid', async (t) => {
  const fake = await fakeServer((uid, operation) => encodeMessage({ isResponse: true, uid: uid + 1, operation }, Buffer.from([0])));
  t.after(() => fake.close());
  const client = await CacheClient.connect(fake.target);
  const results = await Promise.allSettled([client.have('a'), client.have('b')]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    if (r.status === 'rejected') {
      assert.ok(r.reason instanceof DistkitError);
      assert.equal(r.reason.code, 'cache-protocol');
      assert.match(r.reason.message, /does not match the oldest request uid=1/);
    }
  }
});

test('client reports the cache unavailable when a proxy answers with an empty payload or 0x02', async (t) => {
  let n = 0;
  const fake = await fakeServer((uid, operation) => encodeMessage({ isResponse: true, uid, operation }, n++ % 2 === 0 ? Buffer.alloc(0) : Buffer.from([Status.DISCONNECTED])));
  t.after(() => fake.close());
  const client = await CacheClient.connect(fake.target);
  t.after(() => client.destroy());
  await assert.rejects(client.get('a'), { code: 'cache-unavailable' });
  await assert.rejects(client.have('a'), { code: 'cache-unavailable' });
  await assert.rejects(client.add('a', 'b', 1), { code: 'cache-unavailable' });
});

test('client rejects outstanding requests when the server closes the connection', async (t) => {
  const server = net.createServer((socket) => socket.once('data', () => socket.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const client = await CacheClient.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  await assert.rejects(client.get('a'), { code: 'cache-disconnected' });
  await assert.rejects(client.get('b'), { code: 'cache-disconnected' });
});

test('client fails to connect with a clear error when nothing listens', async () => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  await assert.rejects(CacheClient.connect({ host: '127.0.0.1', port }), (e: DistkitError) => e.code === 'cache-connect' && /ECONNREFUSED/.test(e.message));
});
