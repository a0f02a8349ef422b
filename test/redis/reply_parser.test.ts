// The native Redis link's reply parser (src/native/spawn/redis_link.c) against a model written
// here: any sequence of the replies dc_server's commands get (SET NX, GET, DEL, EXISTS, MGET),
// fed in pieces cut anywhere, gives one answer per request, in order, each the one the model
// gives (a status, a value's place, an error line); bytes that are not such replies fail the
// link, never answer a request with another's reply, and never crash.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { replyParse } from 'distkit-spawn';
import { Operation, Status } from '../../src/cache/wire/index';

const STATUS = 7;
const VALUE = 8;
const ERROR = 9;
/** The text redis_link.c answers with for a reply its command does not get (offset -1). */
const UNEXPECTED = 'unexpected reply';

/** One command's reply: a single request's, or an MGET's for a run of lookups. */
type Reply =
  | { kind: 'single'; op: Operation; reply: Resp }
  | { kind: 'mget'; ops: Operation[]; reply: { error: string } | { values: (Buffer | null)[] } };
type Resp = { t: '+'; text: string } | { t: '-'; text: string } | { t: ':'; n: number } | { t: '$'; value: Buffer | null };

function encode(r: Resp): Buffer {
  switch (r.t) {
    case '+':
    case '-':
      return Buffer.from(`${r.t}${r.text}\r\n`);
    case ':':
      return Buffer.from(`:${r.n}\r\n`);
    case '$':
      return r.value === null ? Buffer.from('$-1\r\n') : Buffer.concat([Buffer.from(`$${r.value.length}\r\n`), r.value, Buffer.from('\r\n')]);
  }
}

/** What the model answers a single request `op` given reply `r` at byte `at`: [kind, a, b]. */
function modelSingle(op: Operation, r: Resp, at: number): number[] {
  if (r.t === '-') return [ERROR, at + 1, Math.min(r.text.length, 512)];
  const unexpected = [ERROR, -1, UNEXPECTED.length];
  switch (op) {
    case Operation.ADD:
      if (r.t === '+') return [STATUS, 0, Status.OK];
      return r.t === '$' && r.value === null ? [STATUS, 0, Status.ADD_MATCHING_SESSION] : unexpected;
    case Operation.GET:
      if (r.t !== '$') return unexpected;
      return r.value === null ? [STATUS, 0, Status.NOTOK] : [VALUE, at + `$${r.value.length}\r\n`.length, r.value.length];
    default:
      return r.t === ':' ? [STATUS, 0, r.n > 0 ? Status.OK : Status.NOTOK] : unexpected;
  }
}

const line = fc.stringMatching(/^[A-Za-z0-9 :.-]{0,40}$/);
const value = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
const resp: fc.Arbitrary<Resp> = fc.oneof(
  line.map((text) => ({ t: '+' as const, text })),
  line.map((text) => ({ t: '-' as const, text: `ERR ${text}` })),
  fc.integer({ min: -5, max: 1_000_000 }).map((n) => ({ t: ':' as const, n })),
  fc.option(value).map((v) => ({ t: '$' as const, value: v })),
);
const lookup = fc.constantFrom<Operation>(Operation.GET, Operation.HAVE);
const reply: fc.Arbitrary<Reply> = fc.oneof(
  fc.record({ kind: fc.constant('single' as const), op: fc.constantFrom<Operation>(Operation.ADD, Operation.GET, Operation.REMOVE, Operation.HAVE), reply: resp }),
  fc.integer({ min: 1, max: 6 }).chain((n) =>
    fc.record({
      kind: fc.constant('mget' as const),
      ops: fc.array(lookup, { minLength: n, maxLength: n }),
      reply: fc.oneof(line.map((text) => ({ error: `ERR ${text}` })), fc.array(fc.option(value), { minLength: n, maxLength: n }).map((values) => ({ values }))),
    }),
  ),
);

/** The ops pairs, the bytes and the answers the model gives. */
function build(replies: readonly Reply[]): { ops: Int32Array; bytes: Buffer; expected: number[] } {
  const ops: number[] = [];
  const parts: Buffer[] = [];
  const expected: number[] = [];
  let at = 0;
  const put = (b: Buffer): number => {
    parts.push(b);
    at += b.length;
    return at - b.length;
  };
  for (const r of replies) {
    if (r.kind === 'single') {
      ops.push(r.op, 0);
      expected.push(...modelSingle(r.op, r.reply, put(encode(r.reply))));
      continue;
    }
    r.ops.forEach((op, k) => ops.push(op, k === 0 ? r.ops.length : 0));
    if ('error' in r.reply) {
      const start = put(Buffer.from(`-${r.reply.error}\r\n`));
      for (const _ of r.ops) expected.push(ERROR, start + 1, r.reply.error.length);
      continue;
    }
    put(Buffer.from(`*${r.ops.length}\r\n`));
    r.reply.values.forEach((v, k) => {
      const start = put(encode({ t: '$', value: v }));
      if (v === null) expected.push(STATUS, 0, Status.NOTOK);
      else if (r.ops[k] === Operation.HAVE) expected.push(STATUS, 0, Status.OK);
      else expected.push(VALUE, start + `$${v.length}\r\n`.length, v.length);
    });
  }
  return { ops: Int32Array.from(ops), bytes: Buffer.concat(parts), expected };
}

test('redis reply parser answers every request as the model does when replies come cut anywhere', () => {
  fc.assert(
    fc.property(fc.array(reply, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 12 }), (replies, rawCuts) => {
      const { ops, bytes, expected } = build(replies);
      const cuts = Int32Array.from(rawCuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))).sort((a, b) => a - b));
      assert.deepEqual(Array.from(replyParse(ops, bytes, cuts)), expected);
    }),
    { numRuns: 2000 },
  );
});

test('redis reply parser answers every request when the replies come byte by byte', () => {
  const { ops, bytes, expected } = build([
    { kind: 'single', op: Operation.ADD, reply: { t: '+', text: 'OK' } },
    { kind: 'mget', ops: [Operation.GET, Operation.HAVE, Operation.GET], reply: { values: [Buffer.from('a\r\nb'), null, Buffer.alloc(0)] } },
    { kind: 'single', op: Operation.GET, reply: { t: '-', text: 'MOVED 3999 127.0.0.1:6381' } },
    { kind: 'single', op: Operation.REMOVE, reply: { t: ':', n: 1 } },
  ]);
  const cuts = Int32Array.from({ length: bytes.length }, (_, i) => i);
  assert.deepEqual(Array.from(replyParse(ops, bytes, cuts)), expected);
  assert.equal(expected.length / 3, 6);
});

test('redis reply parser fails the link at the first bad byte when the bytes are no reply its commands get', () => {
  const ops = Int32Array.from([Operation.GET, 0, Operation.GET, 0]);
  for (const bad of ['$3\r\nabcX\r\n', '?x\r\n', '$-2\r\n', '$99999999999\r\n', '*2\r\n', ':1x\r\n', `+${'a'.repeat(5000)}`]) {
    const bytes = Buffer.concat([Buffer.from('$1\r\nz\r\n'), Buffer.from(bad)]);
    const out = Array.from(replyParse(ops, bytes, new Int32Array()));
    assert.deepEqual(out.slice(0, 3), [VALUE, 4, 1], `the reply before ${JSON.stringify(bad)} is answered`);
    assert.deepEqual(out.slice(3), [-1, 7, 0], `${JSON.stringify(bad)} fails the link where it starts`);
  }
  // A reply nobody asked for.
  assert.deepEqual(Array.from(replyParse(Int32Array.from([Operation.HAVE, 0]), Buffer.from(':1\r\n:1\r\n'), new Int32Array())), [STATUS, 0, Status.OK, -1, 4, 0]);
});

test('redis reply parser never answers more requests than were sent nor throws when the bytes are arbitrary', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })), { maxLength: 8 }), fc.uint8Array({ maxLength: 200 }), (pairs, raw) => {
      const ops = Int32Array.from(pairs.flatMap(([op, run]) => [op, run]));
      const out = replyParse(ops, Buffer.from(raw), new Int32Array());
      const answers = out.length % 3 === 0 && out[out.length - 3] === -1 ? out.length / 3 - 1 : out.length / 3;
      assert.ok(answers <= pairs.length);
    }),
    { numRuns: 3000 },
  );
});
