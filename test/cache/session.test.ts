import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheClient } from '../../src/cache/client';
import { encodeAddPayload, encodeMessage, Operation, Status } from '../../src/cache/wire/index';
import { loadGoldenVectors, sessionsOf, type GoldenVector } from './golden_vectors';
import { RawPeer, startCacheServer, type TestServer } from './cache_server';

const vectors = loadGoldenVectors();
const basic = vectors.find((v) => v.name.startsWith('basic'))!;

/** Replays a vector on one connection; each request is written in pieces cut by `cut`. */
async function replay(server: TestServer, vector: GoldenVector, cut: (request: Buffer) => Buffer[] = (r) => [r]): Promise<void> {
  const peer = await RawPeer.connect(server.target);
  try {
    for (const step of vector.steps) {
      const pieces = cut(step.request);
      for (let i = 0; i < pieces.length; i++) {
        await peer.write(pieces[i]!);
        // Let the server read each piece on its own before the next one arrives.
        if (i < pieces.length - 1) await sleep(1);
      }
      if (step.closedByServer) {
        assert.equal((await peer.closed()).length, 0, `${vector.name}: ${step.step} got bytes before the close`);
        return;
      }
      assert.deepEqual((await peer.read(step.response.length)).toString('hex'), step.response.toString('hex'), `${vector.name}: ${step.step}`);
    }
  } finally {
    peer.destroy();
  }
}

/** A second client that must keep being served while another one misbehaves. */
async function assertServes(server: TestServer, tag: string): Promise<void> {
  const client = await CacheClient.connect(server.target);
  try {
    assert.equal(await client.add(`alive-${tag}`, 'yes', 60000), Status.OK);
    assert.deepEqual(await client.get(`alive-${tag}`), Buffer.from('yes'));
  } finally {
    client.destroy();
  }
}

for (const unix of [false, true]) {
  for (const vector of vectors) {
    test(`session answers like the C dc_server over ${unix ? 'a unix socket' : 'TCP'}: ${vector.name}`, async (t) => {
      const server = await startCacheServer({ capacity: sessionsOf(vector), unix });
      t.after(() => server.close());
      const bystander = await CacheClient.connect(server.target);
      t.after(() => bystander.destroy());
      // The bystander changes no state (the eviction vector counts sessions).
      assert.equal(await bystander.have('bystander'), false);
      await replay(server, vector);
      // Whatever that peer did (even the version that made the C server abort), others carry on.
      assert.equal(await bystander.have('bystander'), false);
      await assertServes(server, 'after');
      if (vector.steps.some((s) => s.closedByServer)) assert.ok(server.lines.some((l) => l.startsWith('warning: drop ')), server.lines.join('\n'));
    });
  }
}

test('session answers the basic vector when every request is split at every byte offset over TCP', async (t) => {
  const longest = Math.max(...basic.steps.map((s) => s.request.length));
  for (let at = 1; at < longest; at++) {
    const server = await startCacheServer({});
    try {
      await replay(server, basic, (r) => (at < r.length ? [r.subarray(0, at), r.subarray(at)] : [r]));
    } finally {
      await server.close();
    }
  }
  t.diagnostic(`${longest - 1} split points`);
});

test('session answers the basic and multi-frame vectors when requests arrive byte by byte', async (t) => {
  for (const vector of [basic, vectors.find((v) => v.name.startsWith('multi-frame'))!]) {
    const server = await startCacheServer({ unix: true });
    t.after(() => server.close());
    const bytes = (r: Buffer): Buffer[] => [...r].map((b) => Buffer.from([b]));
    // 2102 one-byte writes with a 1 ms pause each stay well under the test timeout.
    await replay(server, vector, bytes);
  }
});

test('session answers 100 requests pipelined behind 32 KB GET responses in order', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const big = Buffer.alloc(32759, 0x5a);
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  const add = encodeMessage({ isResponse: false, uid: 1, operation: Operation.ADD }, encodeAddPayload({ timeoutMs: 60000, id: Buffer.from('B'), data: big }));
  const requests: Buffer[] = [add];
  for (let i = 0; i < 100; i++) {
    const operation = i % 3 === 2 ? Operation.HAVE : Operation.GET;
    requests.push(encodeMessage({ isResponse: false, uid: 1000 + i, operation }, Buffer.from('B')));
  }
  await peer.write(Buffer.concat(requests));
  assert.deepEqual(await peer.read(15), encodeMessage({ isResponse: true, uid: 1, operation: Operation.ADD }, Buffer.from([0])));
  for (let i = 0; i < 100; i++) {
    const operation = i % 3 === 2 ? Operation.HAVE : Operation.GET;
    const payload = operation === Operation.HAVE ? Buffer.from([0]) : big;
    const expected = encodeMessage({ isResponse: true, uid: 1000 + i, operation }, payload);
    assert.ok((await peer.read(expected.length)).equals(expected), `response ${i}`);
  }
  assert.equal(server.engine.stats.operations, 101);
});

test('session stops reading when a pipelining peer does not read its responses, then catches up', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const client = await CacheClient.connect(server.target);
  t.after(() => client.destroy());
  assert.equal(await client.add('big', Buffer.alloc(32000, 1), 60000), Status.OK);
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  peer.socket.pause();
  const count = 1000; // 32 MB of responses if all were produced
  const gets: Buffer[] = [];
  for (let i = 0; i < count; i++) gets.push(encodeMessage({ isResponse: false, uid: i, operation: Operation.GET }, Buffer.from('big')));
  await peer.write(Buffer.concat(gets));
  // Wait until the server stops making progress (bounded: 5 s).
  let last = -1;
  for (let i = 0; i < 50 && server.engine.stats.operations !== last; i++) {
    last = server.engine.stats.operations;
    await sleep(100);
  }
  const answered = server.engine.stats.operations - 1;
  assert.ok(answered < count, `server answered all ${count} without the peer reading`);
  // Only socket buffers hold the answered ones (kernel loopback buffers are at most a few MB).
  assert.ok(answered * 32000 < 24 * 1024 * 1024, `${answered} responses buffered`);
  // The stalled peer does not stop anyone else.
  assert.equal(await client.have('big'), true);
  peer.socket.resume();
  for (let i = 0; i < count; i++) {
    const response = await peer.read(16 * 14 + 32000);
    assert.equal(response.readUInt32BE(5), i);
  }
  assert.equal(server.engine.stats.operations, count + 2);
});

test('session answers pipelined GETs of distinct sessions byte for byte when its batched writes queue behind a slow reader', async (t) => {
  // The answers of one read share one reused buffer; a write the kernel does not take whole must
  // keep its bytes while the next batch is gathered. Distinct data per session shows any mix-up.
  const server = await startCacheServer({ capacity: 512 });
  t.after(() => server.close());
  const client = await CacheClient.connect(server.target);
  t.after(() => client.destroy());
  const dataOf = (i: number): Buffer => Buffer.alloc(3000 + (i % 7), i & 0xff);
  for (let i = 0; i < 400; i++) assert.equal(await client.add(`s${i}`, dataOf(i), 60000), Status.OK);
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  peer.socket.pause();
  const gets: Buffer[] = [];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 400; i++) gets.push(encodeMessage({ isResponse: false, uid: round * 400 + i, operation: Operation.GET }, Buffer.from(`s${i}`)));
  }
  await peer.write(Buffer.concat(gets));
  await sleep(50);
  peer.socket.resume();
  for (let n = 0; n < 1200; n++) {
    const expected = encodeMessage({ isResponse: true, uid: n, operation: Operation.GET }, dataOf(n % 400));
    assert.ok((await peer.read(expected.length)).equals(expected), `response ${n}`);
  }
});
