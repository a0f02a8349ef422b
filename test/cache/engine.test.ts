import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCacheEngine } from '../../src/cache/engine';
import { MemoryStore } from '../../src/cache/stores/memory_store';
import type { SessionStore } from '../../src/cache/stores/session_store';
import { createLogger } from '../../src/log/index';
import { decodeMessage, encodeAddPayload, Operation, Status, type Message } from '../../src/cache/wire/index';

function engineAt(clock: { now: number }, store = new MemoryStore({ capacity: 512 })) {
  const log = createLogger('t');
  log.setSinks([]);
  return createCacheEngine({ store, clock: () => clock.now, log });
}

function request(uid: number, operation: Operation, payload: Buffer): Message {
  return { isResponse: false, uid, operation, payload, frames: 1 };
}

function answerPayload(engine: ReturnType<typeof engineAt>, message: Message): Buffer | string {
  const a = engine.answer(message);
  if (a.kind === 'close') return `close: ${a.reason}`;
  if (a.kind === 'later') return assert.fail('the in-memory engine answers every request at once');
  if (a.kind === 'payload') return assert.fail('the in-memory engine frames what it answers at once');
  const d = decodeMessage(a.bytes, 'response');
  assert.equal(d.kind, 'ok');
  if (d.kind !== 'ok') return 'bad';
  assert.equal(d.value.uid, message.uid);
  assert.equal(d.value.operation, message.operation);
  return d.value.payload;
}

const add = (id: string, data: string, timeoutMs: number): Buffer => encodeAddPayload({ timeoutMs, id: Buffer.from(id), data: Buffer.from(data) });

test('engine answers with the engine clock, expiring strictly after add time + timeout', () => {
  const clock = { now: 1_000_000 };
  const engine = engineAt(clock);
  assert.deepEqual(answerPayload(engine, request(1, Operation.ADD, add('a', 'A', 100))), Buffer.from([Status.OK]));
  clock.now += 100;
  assert.deepEqual(answerPayload(engine, request(2, Operation.GET, Buffer.from('a'))), Buffer.from('A'));
  assert.equal(engine.stats.sessions, 1);
  clock.now += 0.001;
  assert.deepEqual(answerPayload(engine, request(3, Operation.GET, Buffer.from('a'))), Buffer.from([Status.NOTOK]));
  assert.equal(engine.stats.sessions, 0);
  assert.equal(engine.stats.operations, 3);
});

test('engine lets an expired id be added again and refuses an unexpired duplicate', () => {
  const clock = { now: 0 };
  const engine = engineAt(clock);
  answerPayload(engine, request(1, Operation.ADD, add('d', 'one', 10)));
  assert.deepEqual(answerPayload(engine, request(2, Operation.ADD, add('d', 'two', 10))), Buffer.from([Status.ADD_MATCHING_SESSION]));
  clock.now = 11;
  assert.deepEqual(answerPayload(engine, request(3, Operation.ADD, add('d', 'two', 10))), Buffer.from([Status.OK]));
  assert.deepEqual(answerPayload(engine, request(4, Operation.GET, Buffer.from('d'))), Buffer.from('two'));
});

test('engine asks to close without counting an operation when an ADD payload is under 8 bytes', () => {
  const engine = engineAt({ now: 0 });
  assert.equal(answerPayload(engine, request(1, Operation.ADD, Buffer.alloc(7))), 'close: ADD payload of 7 bytes is shorter than 8');
  assert.equal(engine.stats.operations, 0);
});

test('engine looks up ids of any length with GET, REMOVE and HAVE', () => {
  const engine = engineAt({ now: 0 });
  for (const id of [Buffer.alloc(0), Buffer.alloc(2048, 7)]) {
    assert.deepEqual(answerPayload(engine, request(1, Operation.GET, id)), Buffer.from([1]));
    assert.deepEqual(answerPayload(engine, request(2, Operation.HAVE, id)), Buffer.from([1]));
    assert.deepEqual(answerPayload(engine, request(3, Operation.REMOVE, id)), Buffer.from([1]));
  }
});

test('engine uses the -sessions capacity for eviction', () => {
  const clock = { now: 0 };
  const store = new MemoryStore({ capacity: 64 });
  const engine = engineAt(clock, store);
  for (let i = 0; i < 65; i++) answerPayload(engine, request(i, Operation.ADD, add(`s${i}`, 'v', 1000 + i)));
  assert.equal(engine.stats.sessions, 63);
  assert.equal(store.stats.evicted, 2);
});

test('engine calls afterAnswer once per request answered, closing ones included, with the operation counted', () => {
  const log = createLogger('t');
  log.setSinks([]);
  const seen: number[] = [];
  const engine = createCacheEngine({ clock: () => 0, log, afterAnswer: () => seen.push(engine.stats.operations) });
  answerPayload(engine, request(1, Operation.ADD, add('a', 'A', 100)));
  answerPayload(engine, request(2, Operation.GET, Buffer.from('a')));
  answerPayload(engine, request(3, Operation.ADD, Buffer.alloc(7)));
  assert.deepEqual(seen, [1, 2, 2]);
});

test('engine keeps sessions in the store it is given and closes that store', async () => {
  const log = createLogger('t');
  log.setSinks([]);
  const inner = new MemoryStore({ capacity: 64 });
  const calls: string[] = [];
  const store: SessionStore = {
    add: (now, id, data, timeoutMs) => (calls.push('add'), inner.add(now, id, data, timeoutMs)),
    get: (now, id, headroom) => (calls.push('get'), inner.get(now, id, headroom)),
    remove: (now, id) => (calls.push('remove'), inner.remove(now, id)),
    have: (now, id) => (calls.push('have'), inner.have(now, id)),
    size: (now) => (calls.push('size'), inner.size(now)),
    entries: (now) => inner.entries(now),
    get stats() {
      return inner.stats;
    },
    close: () => (calls.push('close'), inner.close()),
  };
  const engine = createCacheEngine({ store, clock: () => 0, log });
  answerPayload(engine, request(1, Operation.ADD, add('a', 'A', 100)));
  assert.deepEqual(answerPayload(engine, request(2, Operation.GET, Buffer.from('a'))), Buffer.from('A'));
  assert.deepEqual(answerPayload(engine, request(3, Operation.HAVE, Buffer.from('a'))), Buffer.from([Status.OK]));
  assert.deepEqual(answerPayload(engine, request(4, Operation.REMOVE, Buffer.from('a'))), Buffer.from([Status.OK]));
  assert.equal(engine.stats.sessions, 0);
  await engine.close();
  assert.deepEqual(calls, ['add', 'get', 'have', 'remove', 'size', 'close']);
});

test('engine frames a status answer straight into an output area with room, the same bytes as without one, and counts it once', () => {
  const clock = { now: 1_000_000 };
  const engine = engineAt(clock);
  const area = Buffer.alloc(64, 0xee);
  let used = 3; // room claimed before by other answers of the turn
  const output = {
    bytes: area,
    claim(length: number): number {
      if (used + length > area.length) return -1;
      const at = used;
      used += length;
      return at;
    },
  };
  const cases: Array<[Message, Buffer]> = [
    [request(7, Operation.ADD, add('a', 'A', 100)), Buffer.from([Status.OK])],
    [request(0xfffffffe, Operation.HAVE, Buffer.from('a')), Buffer.from([Status.OK])],
    [request(9, Operation.GET, Buffer.from('missing')), Buffer.from([Status.NOTOK])],
    [request(10, Operation.REMOVE, Buffer.from('a')), Buffer.from([Status.OK])],
  ];
  for (const [message, payload] of cases) {
    const before = engine.stats.operations;
    const at = used;
    const answer = engine.answer(message, output);
    assert.equal(answer.kind, 'respond');
    assert.equal(answer.kind === 'respond' && answer.bytes.length, 0, 'written in place, nothing to add');
    assert.equal(used, at + 15, 'one frame header and the status byte');
    const d = decodeMessage(area.subarray(at, used), 'response');
    assert.equal(d.kind, 'ok');
    if (d.kind !== 'ok') return;
    assert.equal(d.value.uid, message.uid);
    assert.equal(d.value.operation, message.operation);
    assert.deepEqual(d.value.payload, payload);
    assert.equal(engine.stats.operations, before + 1);
  }
  assert.equal(area[2], 0xee, 'nothing written before the claimed room');
  // No room left: answered with bytes of its own, as without an output area.
  used = area.length - 5;
  const answer = engine.answer(request(11, Operation.HAVE, Buffer.from('a')), output);
  assert.equal(answer.kind, 'respond');
  const d = answer.kind === 'respond' ? decodeMessage(answer.bytes, 'response') : undefined;
  assert.equal(d?.kind, 'ok');
  if (d?.kind !== 'ok') return;
  assert.equal(d.value.uid, 11);
  assert.equal(d.value.operation, Operation.HAVE);
  assert.deepEqual(d.value.payload, Buffer.from([Status.NOTOK]), 'the session went with the REMOVE above');
  assert.equal(used, area.length - 5, 'no room claimed');
});
