// The snapshot codec as properties (fast-check): any list of sessions within the protocol limits
// comes back identical, in order; any truncation, any single flipped bit and any foreign bytes
// are rejected with a reason, never thrown and never half-decoded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeSnapshot, encodeSnapshot, SNAPSHOT_MAGIC } from '../../../src/cache/snapshot/snapshot_codec';
import { MAX_DATA_LENGTH, MAX_ID_LENGTH } from '../../../src/cache/wire/constants';
import type { StoredSession } from '../../../src/cache/stores/session_store';

const session = fc.record({
  id: fc.uint8Array({ maxLength: MAX_ID_LENGTH }).map((a) => Buffer.from(a)),
  data: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: MAX_DATA_LENGTH - 2, maxLength: MAX_DATA_LENGTH })).map((a) => Buffer.from(a)),
  expiresAt: fc.double({ min: 0, max: 2 ** 53, noNaN: true }),
});
const sessions = fc.array(session, { maxLength: 40 });

/** The chunks encodeSnapshot emits, each copied (it reuses its buffer), and the count it returns. */
function chunksOf(list: readonly StoredSession[], writtenAt: number): { chunks: Buffer[]; count: number } {
  const chunks: Buffer[] = [];
  const count = encodeSnapshot(list, { writtenAt, emit: (bytes) => chunks.push(Buffer.from(bytes)) });
  return { chunks, count };
}

function encoded(list: readonly StoredSession[], writtenAt = 1_700_000_000_000.5): Buffer {
  return Buffer.concat(chunksOf(list, writtenAt).chunks);
}

function plain(list: Iterable<StoredSession>): Array<{ id: string; data: string; expiresAt: number }> {
  return [...list].map((s) => ({ id: s.id.toString('hex'), data: s.data.toString('hex'), expiresAt: s.expiresAt }));
}

test('snapshot codec gives back every session in order when it decodes what it encoded', () => {
  fc.assert(
    fc.property(sessions, fc.double({ min: 0, max: 2 ** 50, noNaN: true }), (list, writtenAt) => {
      const result = decodeSnapshot(encoded(list, writtenAt));
      assert.equal(result.kind, 'ok', result.kind === 'corrupt' ? result.reason : '');
      if (result.kind !== 'ok') return;
      assert.equal(result.count, list.length);
      assert.equal(result.writtenAt, writtenAt);
      assert.deepEqual(plain(result.sessions), plain(list));
    }),
    { numRuns: 150 },
  );
});

test('snapshot codec counts the sessions it encoded when they span several chunks', () => {
  const data = Buffer.alloc(MAX_DATA_LENGTH, 7);
  const list = Array.from({ length: 300 }, (_, i) => ({ id: Buffer.from(`id-${i}`), data, expiresAt: i }));
  const { chunks, count } = chunksOf(list, 0);
  assert.ok(chunks.length > 1, `${chunks.length} chunk(s): the chunk boundary was not crossed`);
  assert.equal(count, 300);
  const result = decodeSnapshot(Buffer.concat(chunks));
  assert.equal(result.kind, 'ok');
  if (result.kind === 'ok') assert.deepEqual(plain(result.sessions), plain(list));
});

test('snapshot codec rejects a snapshot when it is cut short anywhere', () => {
  fc.assert(
    fc.property(sessions, fc.nat(), (list, cut) => {
      const bytes = encoded(list);
      const result = decodeSnapshot(bytes.subarray(0, cut % bytes.length));
      assert.equal(result.kind, 'corrupt');
    }),
    { numRuns: 300 },
  );
});

test('snapshot codec rejects a snapshot when any one bit is flipped', () => {
  fc.assert(
    fc.property(sessions, fc.nat(), fc.integer({ min: 0, max: 7 }), (list, at, bit) => {
      const bytes = Buffer.from(encoded(list));
      bytes[at % bytes.length]! ^= 1 << bit;
      const result = decodeSnapshot(bytes);
      assert.equal(result.kind, 'corrupt');
    }),
    { numRuns: 500 },
  );
});

test('snapshot codec rejects foreign bytes with a reason and never throws', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (raw, withMagic) => {
      const bytes = withMagic ? Buffer.concat([SNAPSHOT_MAGIC, raw]) : Buffer.from(raw);
      const result = decodeSnapshot(bytes);
      if (result.kind === 'corrupt') assert.ok(result.reason.length > 0);
      else [...result.sessions]; // a valid snapshot by chance must still walk cleanly
    }),
    { numRuns: 500 },
  );
  const text = decodeSnapshot(Buffer.from('id,data,expiry\n1,2,3\n'));
  assert.deepEqual(text, { kind: 'corrupt', reason: 'not a dc_server snapshot (bad magic)' });
});

test('snapshot codec refuses to encode a session when its id exceeds the protocol limit', () => {
  assert.throws(() => chunksOf([{ id: Buffer.alloc(MAX_ID_LENGTH + 1), data: Buffer.alloc(1), expiresAt: 1 }], 0), RangeError);
});
