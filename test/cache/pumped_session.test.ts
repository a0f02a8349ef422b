// The cache session on the native socket pump (the path every accepted socket of dc_server takes):
// the pump's edges seen through the protocol: frames split across reads, many frames in one read,
// a peer that does not read its answers, a reset in the middle of a frame.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { encodeAddPayload, encodeMessage, MessageReader, Operation, Status } from '../../src/cache/wire/index';
import { pumpedSockets } from '../../src/activation/socket_pump';
import { startCacheServer, type TestServer } from './cache_server';

const SESSION = Buffer.alloc(4096, 0x5a);
const ID = Buffer.from('pumped-session-id');

function request(uid: number, operation: Operation, payload: Buffer): Buffer {
  return encodeMessage({ isResponse: false, uid, operation }, payload);
}

async function connect(server: TestServer): Promise<net.Socket> {
  const socket = net.connect({ ...server.target, allowHalfOpen: true } as net.NetConnectOpts);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Responses off one socket, parsed as they come. */
class Responses {
  readonly #reader = new MessageReader('response');
  readonly #got: Array<{ uid: number; length: number; status: number }> = [];
  #wake: (() => void) | undefined;

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#reader.push(chunk);
      for (let next = this.#reader.next(); next.kind === 'ok'; next = this.#reader.next()) {
        this.#got.push({ uid: next.value.uid, length: next.value.payload.length, status: next.value.payload[0]! });
      }
      this.#wake?.();
    });
  }

  /** The next `count` responses: uid, payload length and first byte. */
  async take(count: number): Promise<Array<{ uid: number; length: number; status: number }>> {
    while (this.#got.length < count) await new Promise<void>((resolve) => (this.#wake = resolve));
    return this.#got.splice(0, count);
  }
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    assert.ok(Date.now() < deadline, 'condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function storeSession(server: TestServer): Promise<void> {
  const socket = await connect(server);
  const answers = new Responses(socket);
  socket.write(request(1, Operation.ADD, encodeAddPayload({ timeoutMs: 600_000, id: ID, data: SESSION })));
  const [added] = await answers.take(1);
  assert.equal(added!.status, Status.OK);
  socket.destroy();
}

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
  await until(() => server.engine.stats.operations > before);
  let seen = -1;
  while (seen !== server.engine.stats.operations) {
    seen = server.engine.stats.operations;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(seen - before < count / 2, `the server answered ${seen - before} of ${count} requests nobody read`);
  assert.ok(process.memoryUsage().rss - rssBefore < 64 * 1024 * 1024, 'the server kept the answers in memory');
  const answers = new Responses(socket);
  socket.resume();
  const got = await answers.take(count);
  got.forEach((r, i) => {
    assert.equal(r.uid, i);
    assert.equal(r.length, SESSION.length);
  });
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
