// What only the compact store promises (the semantics shared with MemoryStore are tested in
// memory_store.test.ts and the model test): it reserves nothing up front for a large capacity,
// and a million sessions cost the payload plus a small fixed overhead.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SlabStore, slotsBySeq } from '../../../src/cache/stores/slab_store';
import { MAX_CAPACITY } from '../../../src/cache/stores/memory_store';

test('SlabStore reserves under 1 MB when made for 10,000,000 sessions', () => {
  const store = new SlabStore({ capacity: MAX_CAPACITY });
  assert.ok(store.reservedBytes < 1024 * 1024, `${store.reservedBytes} bytes reserved up front`);
  assert.equal(store.add(0, Buffer.from('a'), Buffer.from('b'), 1000), true);
  assert.ok(store.reservedBytes <= 5 * 1024 * 1024, `${store.reservedBytes} bytes reserved for one session`);
});

test('SlabStore holds 1,000,000 sessions of 150 bytes in at most 1.4 bytes per payload byte', () => {
  const sessions = 1_000_000;
  const store = new SlabStore({ capacity: sessions });
  const id = Buffer.alloc(32, 0x69);
  const data = Buffer.alloc(150, 0x5a);
  for (let i = 0; i < sessions; i++) {
    id.writeUInt32BE(i, 0);
    store.add(0, id, data, 3_600_000);
  }
  assert.equal(store.size(0), sessions);
  id.writeUInt32BE(777_777, 0);
  assert.deepEqual(store.get(0, id), data);
  const perPayloadByte = store.reservedBytes / (sessions * (id.length + data.length));
  assert.ok(perPayloadByte <= 1.4, `${perPayloadByte.toFixed(2)} bytes reserved per payload byte`);
});

test('slotsBySeq orders slots by their seq when seqs are unique and span far beyond a packed float', () => {
  // Seqs far apart (up to 2^53) are what the packed sort of entries() cannot hold exactly.
  const seqs = fc.uniqueArray(fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.double({ min: 0, max: Number.MAX_SAFE_INTEGER, noNaN: true }).map(Math.floor)), { minLength: 0, maxLength: 200 });
  fc.assert(
    fc.property(seqs, fc.integer(), (values, salt) => {
      const seq = new Float64Array(values);
      // The slots in a shuffled order, as the expiry heap holds them.
      const slots = Int32Array.from(values.map((_, i) => i)).sort((a, b) => ((a * 7919 + salt) % 101) - ((b * 7919 + salt) % 101));
      const want = [...slots].sort((a, b) => seq[a]! - seq[b]!);
      assert.deepEqual([...slotsBySeq(slots, seq)], want);
    }),
  );
});
