import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeAddPayload, encodeMessage, MessageReader, Operation, Status } from '../../src/cache/wire/index';
import { RawPeer, startCacheServer } from './cache_server';
import { seededRandom } from './random';

test('session answers a random pipelined workload like a reference map when fed in random chunks', async (t) => {
  const server = await startCacheServer({ capacity: 0 });
  t.after(() => server.close());
  const rand = seededRandom(4242);
  const model = new Map<string, Buffer>();
  const requests: Buffer[] = [];
  const expected: Buffer[] = [];
  for (let uid = 0; uid < 3000; uid++) {
    const operation = rand(4) as Operation;
    const id = `id-${rand(40)}`;
    let payload: Buffer;
    let answer: Buffer;
    if (operation === Operation.ADD) {
      const data = Buffer.alloc(1 + rand(rand(10) === 0 ? 32000 : 300), uid & 0xff);
      payload = encodeAddPayload({ timeoutMs: 3_600_000, id: Buffer.from(id), data });
      answer = Buffer.from([model.has(id) ? Status.ADD_MATCHING_SESSION : Status.OK]);
      if (!model.has(id)) model.set(id, data);
    } else {
      payload = Buffer.from(id);
      const hit = model.get(id);
      if (operation === Operation.GET) answer = hit ?? Buffer.from([Status.NOTOK]);
      else answer = Buffer.from([hit === undefined ? Status.NOTOK : Status.OK]);
      if (operation === Operation.REMOVE) model.delete(id);
    }
    requests.push(encodeMessage({ isResponse: false, uid, operation }, payload));
    expected.push(encodeMessage({ isResponse: true, uid, operation }, answer));
  }
  const stream = Buffer.concat(requests);
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  const reading = (async () => {
    const want = Buffer.concat(expected);
    const got = await peer.read(want.length, 30_000).catch((e: Error) => { throw new Error(`${e.message}; ops=${server.engine.stats.operations} lines=${server.lines.join("|")}`); });
    return [got, want] as const;
  })();
  for (let at = 0; at < stream.length; ) {
    const size = 1 + rand(rand(4) === 0 ? 20 : 9000);
    await peer.write(stream.subarray(at, at + size));
    at += size;
    if (rand(8) === 0) await sleep(1);
  }
  const [got, want] = await reading;
  // Compare message by message for a readable failure.
  const reader = new MessageReader('response');
  reader.push(got);
  for (let i = 0; i < expected.length; i++) {
    const r = reader.next();
    assert.equal(r.kind, 'ok', `response ${i}`);
    if (r.kind === 'ok') assert.ok(encodeMessage(r.value, r.value.payload).equals(expected[i]!), `response ${i} (uid ${r.value.uid})`);
  }
  assert.ok(got.equals(want));
});

test('session expires sessions by the engine clock with no sliding', async (t) => {
  const clock = { now: 1_700_000_000_000 };
  const server = await startCacheServer({ clock: () => clock.now });
  t.after(() => server.close());
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  const ask = async (uid: number, operation: Operation, payload: Buffer): Promise<string> => {
    await peer.write(encodeMessage({ isResponse: false, uid, operation }, payload));
    const header = await peer.read(14);
    return (await peer.read(header.readUInt16BE(12))).toString('hex');
  };
  assert.equal(await ask(1, Operation.ADD, encodeAddPayload({ timeoutMs: 1000, id: Buffer.from('e'), data: Buffer.from('E') })), '00');
  for (const step of [0, 400, 400, 200]) {
    clock.now += step;
    assert.equal(await ask(2, Operation.HAVE, Buffer.from('e')), '00', `at +${step}`);
  }
  clock.now += 1;
  assert.equal(await ask(3, Operation.GET, Buffer.from('e')), '01');
  assert.equal(await ask(4, Operation.ADD, encodeAddPayload({ timeoutMs: 0, id: Buffer.from('e'), data: Buffer.from('F') })), '00');
  clock.now += 0.5;
  assert.equal(await ask(5, Operation.HAVE, Buffer.from('e')), '01');
});
