import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Duplex, PassThrough } from 'node:stream';
import { createCacheEngine } from '../../src/cache/engine';
import { serveCacheConnection } from '../../src/cache/session';
import { createLogger } from '../../src/log/index';
import { CacheClient } from '../../src/cache/client';
import { encodeAddPayload, encodeMessage, Operation, Status } from '../../src/cache/wire/index';
import { RawPeer, startCacheServer } from './cache_server';
import { waitUntil } from '../support/wait_until';

const get = (uid: number, id: string): Buffer => encodeMessage({ isResponse: false, uid, operation: Operation.GET }, Buffer.from(id));

test('session drops garbage, an HTTP request and wrong versions while other clients keep being served', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const good = await CacheClient.connect(server.target);
  t.after(() => good.destroy());
  assert.equal(await good.add('k', 'v', 60000), Status.OK);
  // A peer stalled in the middle of a frame holds only its own connection.
  const stalled = await RawPeer.connect(server.target);
  t.after(() => stalled.destroy());
  await stalled.write(get(1, 'k').subarray(0, 9));

  const bad: Array<[string, Buffer]> = [
    ['http', Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')],
    ['tls hello', Buffer.from('16030100a5010000a10303', 'hex')],
    ['version 0x0010', Buffer.from('00100000000000000100030100080102030405060708', 'hex')],
    ['version 0x0012', Buffer.from('00120000000000000100030100080102030405060708', 'hex')],
    ['random', Buffer.from([0x00, 0x11, 0x00, 0x00, 0x07, 0x99, 0x98])],
  ];
  const peers = await Promise.all(bad.map(() => RawPeer.connect(server.target)));
  t.after(() => peers.forEach((p) => p.destroy()));
  // Interleave the attacks with normal traffic.
  const results = await Promise.all([
    ...peers.map(async (peer, i) => {
      await peer.write(bad[i]![1]);
      return (await peer.closed()).length;
    }),
    (async () => {
      for (let i = 0; i < 50; i++) assert.deepEqual(await good.get('k'), Buffer.from('v'));
      return 0;
    })(),
  ]);
  assert.deepEqual(results, [0, 0, 0, 0, 0, 0], 'nothing is ever sent back to a bad peer');
  const drops = server.lines.filter((l) => l.startsWith('warning: drop '));
  assert.equal(drops.length, bad.length, server.lines.join('\n'));
  assert.ok(drops.some((l) => /reason="wrong protocol version/.test(l)));
  assert.ok(drops.every((l) => / peer=127\.0\.0\.1:\d+ /.test(l)));
  assert.equal(server.engine.stats.dropped, bad.length);
  // The stalled peer finishes its frame and is answered.
  await stalled.write(get(1, 'k').subarray(9));
  assert.deepEqual(await stalled.read(15), encodeMessage({ isResponse: true, uid: 1, operation: Operation.GET }, Buffer.from('v')));
});

test('session answers every request before closing when the peer half-closes', async (t) => {
  const server = await startCacheServer({ unix: true });
  t.after(() => server.close());
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  const add = encodeMessage({ isResponse: false, uid: 7, operation: Operation.ADD }, encodeAddPayload({ timeoutMs: 1000, id: Buffer.from('h'), data: Buffer.alloc(20000, 3) }));
  const requests = [add];
  for (let i = 0; i < 200; i++) requests.push(get(100 + i, 'h'));
  peer.socket.pause(); // let the server block on back-pressure before it sees the FIN
  await peer.write(Buffer.concat(requests));
  peer.socket.end();
  await sleep(100);
  peer.socket.resume();
  const all = await peer.closed();
  const one = 10 * 14 + 20000;
  assert.equal(all.length, 15 + 200 * one);
  for (let i = 0; i < 200; i++) assert.equal(all.readUInt32BE(15 + i * one + 5), 100 + i);
  assert.equal(server.engine.stats.operations, 201);
});

test('session closes after the complete requests when a half-closing peer leaves a partial frame', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  await peer.write(Buffer.concat([get(1, 'x'), get(2, 'x').subarray(0, 10)]));
  peer.socket.end();
  assert.deepEqual(await peer.closed(), encodeMessage({ isResponse: true, uid: 1, operation: Operation.GET }, Buffer.from([1])));
  await waitUntil(() => (server.lines.some((l) => /^info: truncated conn=\d+ bytes=10$/.test(l)) ? true : undefined), 5000, () => server.lines.join('\n'));
});

test('session answers the requests before a malformed one, then closes', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  const bad = Buffer.from(get(3, 'x'));
  bad[10] = 9;
  await peer.write(Buffer.concat([get(1, 'x'), get(2, 'x'), bad, get(4, 'x')]));
  const got = await peer.closed();
  assert.equal(got.length, 30);
  assert.deepEqual([got.readUInt32BE(5), got.readUInt32BE(20)], [1, 2]);
  assert.ok(server.lines.some((l) => /drop .*reason="operation 0x09 \(want 0\.\.3\)" offset=40/.test(l)), server.lines.join('\n'));
});

test('session serves a plain Duplex of two pipes (the inetd-over-ssh shape) until its input ends', async () => {
  const log = createLogger('t');
  log.setSinks([]);
  const engine = createCacheEngine({ log });
  const input = new PassThrough();
  const output = new PassThrough();
  const stream = Duplex.from({ readable: input, writable: output });
  const done = engine.serve({ stream, peer: { kind: 'pipe' }, id: 1, listener: 'main' });
  const add = encodeMessage({ isResponse: false, uid: 1, operation: Operation.ADD }, encodeAddPayload({ timeoutMs: 1000, id: Buffer.from('p'), data: Buffer.from('P') }));
  input.write(add);
  input.end(get(2, 'p'));
  const chunks: Buffer[] = [];
  output.on('data', (c: Buffer) => chunks.push(c));
  await done;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    Buffer.concat(chunks),
    Buffer.concat([
      encodeMessage({ isResponse: true, uid: 1, operation: Operation.ADD }, Buffer.from([0])),
      encodeMessage({ isResponse: true, uid: 2, operation: Operation.GET }, Buffer.from('P')),
    ]),
  );
  assert.equal(engine.stats.connections, 0);
});

test('session drops only the connection whose request made the engine throw', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  // The engine's own answer, except that a GET of "boom" hits a fault as a bug would.
  const real = server.engine;
  const faulty = {
    ...real,
    answer: (m: Parameters<typeof real.answer>[0]) => {
      if (m.operation === Operation.GET && m.payload.toString() === 'boom') throw new Error('injected fault');
      return real.answer(m);
    },
  };
  const input = new PassThrough();
  const output = new PassThrough();
  const done = serveCacheConnection(
    { stream: Duplex.from({ readable: input, writable: output }), peer: { kind: 'pipe' }, id: 9, listener: 'main' },
    faulty,
  );
  input.write(Buffer.concat([get(1, 'x'), get(2, 'boom'), get(3, 'x')]));
  await done;
  assert.ok(server.lines.some((l) => l.startsWith('err: answer failed conn=9')), server.lines.join('\n'));
  assert.ok(server.lines.some((l) => /^warning: drop conn=9 .*reason="internal error"/.test(l)));
  await assertStillServes(server);
});

async function assertStillServes(server: Awaited<ReturnType<typeof startCacheServer>>): Promise<void> {
  const client = await CacheClient.connect(server.target);
  try {
    assert.equal(await client.have('x'), false);
  } finally {
    client.destroy();
  }
}
