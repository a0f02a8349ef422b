// The cache session on the native socket pump (the path every accepted socket of dc_server takes):
// the pump's edges seen through the protocol: frames split across reads, many frames in one read,
// a peer that does not read its answers, a reset in the middle of a frame.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Operation, Status } from '../../src/cache/wire/index';
import { pumpedSockets } from '../../src/activation/socket_pump';
import { startCacheServer, type TestServer } from './cache_server';
import { connectPeer, request, Responses, storeSession as storeOne, takeFlood, until, whenSteady } from './pumped_peer';

const SESSION = Buffer.alloc(4096, 0x5a);
const ID = Buffer.from('pumped-session-id');


const connect = (server: TestServer): Promise<net.Socket> => connectPeer(server.target as net.NetConnectOpts);
const storeSession = (server: TestServer): Promise<void> => storeOne(server.target as net.NetConnectOpts, ID, SESSION);

test('pumped session answers every request in order when a thousand arrive in one write', async (t) => {
  const server = await startCacheServer({ unix: true });
  t.after(() => server.close());
  await storeSession(server);
  const socket = await connect(server);
  t.after(() => socket.destroy());
  const burst = Buffer.concat(Array.from({ length: 1000 }, (_, i) => request(i + 10, i % 2 === 0 ? Operation.GET : Operation.HAVE, ID)));
  const answers = new Responses(socket);
  socket.write(burst);
  const got = await answers.take(1000);
  assert.equal(got.length, 1000);
  assert.equal(pumpedSockets(), 1, 'the connection is served by the native pump');
  got.forEach((r, i) => {
    assert.equal(r.uid, i + 10);
    assert.equal(r.length, i % 2 === 0 ? SESSION.length : 1);
  });
});

test('pumped session answers GET hits byte for byte when one turn\'s answers overflow the output area', async (t) => {
  // Hits of one frame (up to 2048 bytes) are copied from the store straight into the pump's 64 KB
  // output area: 200 answers of 1-2 KB in one turn fill it several times over, and each must
  // still carry its own session; a 3 KB session (several frames) goes the other way among them.
  const server = await startCacheServer({ unix: true });
  t.after(() => server.close());
  const sizes = [1000, 2048, 3000];
  const sessions = sizes.map((size, k) => ({ id: Buffer.from(`in-place-${k}`), data: Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + k * 31) & 0xff)) }));
  for (const s of sessions) await storeOne(server.target as net.NetConnectOpts, s.id, s.data);
  const socket = await connect(server);
  t.after(() => socket.destroy());
  const answers = new Responses(socket);
  const count = 200;
  socket.write(Buffer.concat(Array.from({ length: count }, (_, i) => request(i + 1, Operation.GET, i % 4 === 3 ? Buffer.from('missing') : sessions[i % 4]!.id))));
  const got = await answers.take(count);
  got.forEach((r, i) => {
    assert.equal(r.uid, i + 1);
    if (i % 4 === 3) assert.deepEqual(r.payload, Buffer.from([Status.NOTOK]), `answer ${i} is a miss`);
    else assert.ok(r.payload.equals(sessions[i % 4]!.data), `answer ${i} carries session ${i % 4}`);
  });
});

test('pumped session answers requests split at every offset across reads over TCP', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  await storeSession(server);
  const socket = await connect(server);
  t.after(() => socket.destroy());
  const one = request(7, Operation.GET, ID);
  const answers = new Responses(socket);
  for (let at = 1; at < one.length; at++) {
    socket.write(one.subarray(0, at));
    await new Promise((resolve) => setTimeout(resolve, 1)); // its own read on the server
    socket.write(one.subarray(at));
    const [r] = await answers.take(1);
    assert.equal(r!.length, SESSION.length, `split at ${at}`);
  }
});

test('pumped session stops reading and loses no answer when the peer does not read a 4 KB GET flood', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  await storeSession(server);
  const socket = await connect(server);
  t.after(() => socket.destroy());
  socket.pause();
  const count = 20_000; // 80 MB of answers, far above every socket buffer
  const flood = Buffer.concat(Array.from({ length: count }, (_, i) => request(i, Operation.GET, ID)));
  const before = server.engine.stats.operations;
  const rssBefore = process.memoryUsage().rss;
  socket.write(flood);
  // The server stops answering once its answers back up (they wait in the kernel, not here).
  const seen = await whenSteady(() => server.engine.stats.operations, before);
  assert.ok(seen - before < count / 2, `the server answered ${seen - before} of ${count} requests nobody read`);
  assert.ok(process.memoryUsage().rss - rssBefore < 64 * 1024 * 1024, 'the server kept the answers in memory');
  await takeFlood(socket, count, SESSION.length);
});

test('pumped session closes only that connection when the peer resets in the middle of a frame', async (t) => {
  const server = await startCacheServer({ unix: false });
  t.after(() => server.close());
  const socket = await connect(server);
  const one = request(3, Operation.HAVE, ID);
  socket.write(one.subarray(0, 9));
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.resetAndDestroy();
  await until(() => server.engine.stats.connections === 0);
  await storeSession(server); // others are still served
  await until(() => server.engine.stats.connections === 0);
});

test('pumped session closes only the connection that sent garbage when sixteen connections are ready in one turn', async (t) => {
  const server = await startCacheServer({ unix: true });
  t.after(() => server.close());
  await storeSession(server);
  const sockets = await Promise.all(Array.from({ length: 16 }, () => connect(server)));
  t.after(() => sockets.forEach((s) => s.destroy()));
  const answers = sockets.map((s) => new Responses(s));
  const BAD = 5;
  // One synchronous stretch: every write reaches the kernel before the server's next poll, so the
  // pump reads all sixteen in one turn and answers them in one callback.
  sockets.forEach((socket, c) => {
    if (c === BAD) socket.write(Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    else socket.write(Buffer.concat(Array.from({ length: 3 }, (_, i) => request(100 * c + i, i === 1 ? Operation.HAVE : Operation.GET, ID))));
  });
  for (const [c, got] of (await Promise.all(answers.map((a, c) => (c === BAD ? Promise.resolve([]) : a.take(3))))).entries()) {
    if (c === BAD) continue;
    assert.deepEqual(got.map((r) => r.uid), [100 * c, 100 * c + 1, 100 * c + 2], `connection ${c} got its answers in order`);
    assert.deepEqual(got.map((r) => r.length), [SESSION.length, 1, SESSION.length]);
  }
  await answers[BAD]!.end(); // our FIN, nothing else
  sockets[BAD]!.end();
  await until(() => server.engine.stats.dropped === 1 && server.engine.stats.connections === 15);
  assert.equal(server.lines.filter((l) => l.startsWith('warning: drop ')).length, 1, server.lines.join('\n'));
  assert.match(server.lines.find((l) => l.startsWith('warning: drop '))!, /reason="/);
  // The others are still served on the same connections.
  sockets.forEach((socket, c) => c === BAD || socket.write(request(7000 + c, Operation.HAVE, ID)));
  for (const [c, a] of answers.entries()) if (c !== BAD) assert.equal((await a.take(1))[0]!.uid, 7000 + c);
});
