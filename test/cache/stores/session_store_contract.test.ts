// The SessionStore contract, checked as a property with fast-check (a failure is shrunk to a
// short sequence of operations and printed with its seed): random operations go to a store and to
// a plain reference model of the C server's semantics, and every answer must agree. Each store that takes the engine's place gets a line in STORES.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryStore } from '../../../src/cache/stores/memory_store';
import { SlabStore } from '../../../src/cache/stores/slab_store';
import type { SessionStore, StoredSession } from '../../../src/cache/stores/session_store';
import { ReferenceStore } from './reference_store';

const STORES: ReadonlyArray<{ readonly name: string; readonly capacity: number; readonly make: () => SessionStore }> = [
  { name: 'MemoryStore of 64', capacity: 64, make: () => new MemoryStore({ capacity: 64 }) },
  { name: 'MemoryStore with no count limit', capacity: 0, make: () => new MemoryStore({ capacity: 0 }) },
  { name: 'SlabStore of 64', capacity: 64, make: () => new SlabStore({ capacity: 64 }) },
  { name: 'SlabStore with no count limit', capacity: 0, make: () => new SlabStore({ capacity: 0 }) },
];

type Op =
  | { readonly kind: 'add'; readonly id: number; readonly size: number; readonly fill: number; readonly timeoutMs: number; readonly dt: number }
  | { readonly kind: 'get' | 'remove' | 'have'; readonly id: number; readonly dt: number }
  | { readonly kind: 'entries'; readonly dt: number };

// Integer times and timeouts over a few hundred ids make equal expiries, duplicates and
// evictions common, so the tie order and every refusal are exercised.
const dt = fc.integer({ min: 0, max: 2 });
const id = fc.integer({ min: 0, max: 299 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('add' as const), id, size: fc.integer({ min: 0, max: 23 }), fill: fc.integer({ min: 0, max: 255 }), timeoutMs: fc.integer({ min: 0, max: 999 }), dt }) },
  fc.record({ kind: fc.constantFrom('get' as const, 'remove' as const, 'have' as const), id, dt }),
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('entries' as const), dt }) },
);

function textOf(entries: readonly StoredSession[]): string {
  return entries.map((e) => `${e.id.toString('hex')}:${e.data.toString('hex')}:${e.expiresAt}:${Object.keys(e).length}`).join(',');
}

/** Runs `ops` on both; returns how many ADDs met a full store. */
function compare(store: SessionStore, reference: ReferenceStore, capacity: number, ops: readonly Op[]): number {
  let now = 0;
  let full = 0;
  ops.forEach((o, step) => {
    now += o.dt;
    if (o.kind === 'entries') {
      // A flat text of both first (cheap); the structural comparison says what differs.
      const got = [...store.entries(now)];
      const want = reference.entries(now);
      if (textOf(got) !== textOf(want)) assert.deepEqual(got, want, `step ${step} now ${now} entries`);
      return;
    }
    const key = Buffer.from([o.id >> 8, o.id & 0xff]);
    const where = `step ${step} now ${now} id ${key.toString('hex')}`;
    switch (o.kind) {
      case 'add': {
        const data = Buffer.alloc(o.size, o.fill);
        if (capacity > 0 && reference.size(now) >= capacity) full++;
        assert.equal(store.add(now, key, data, o.timeoutMs), reference.add(now, key, data, o.timeoutMs), where);
        break;
      }
      case 'get': {
        const want = reference.get(now, key);
        assert.deepEqual(store.get(now, key), want, where);
        // With headroom (how the engine answers a GET): the same data after that many bytes.
        assert.deepEqual(store.get(now, key, 14)?.subarray(14), want, `${where} headroom 14`);
        break;
      }
      case 'remove':
        assert.equal(store.remove(now, key), reference.remove(now, key), where);
        break;
      case 'have':
        assert.equal(store.have(now, key), reference.have(now, key), where);
    }
    assert.equal(store.size(now), reference.size(now), where);
  });
  return full;
}

/** Operations per store and run: 10^5 in `npm test`; `npm run fuzz -- --target store` sets more
 * (and the seed) through the environment. */
const OPERATIONS = Number(process.env.STORE_CONTRACT_OPS ?? 100_000);
const SEED = process.env.STORE_CONTRACT_SEED === undefined ? undefined : Number(process.env.STORE_CONTRACT_SEED);
const SEQUENCE = { minLength: 1000, maxLength: 3000 };

for (const { name, capacity, make } of STORES) {
  test(`${name} answers every call as the reference model does when driven by random operations`, async () => {
    let full = 0;
    let operations = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { ...SEQUENCE, size: 'max' }), async (ops) => {
        const store = make();
        try {
          full += compare(store, new ReferenceStore(capacity), capacity, ops);
          operations += ops.length;
        } finally {
          await store.close();
        }
      }),
      { numRuns: Math.ceil(OPERATIONS / SEQUENCE.minLength), ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    assert.ok(operations >= OPERATIONS, `only ${operations} operations ran`);
    if (capacity > 0) assert.ok(full > 0, 'the random operations never filled the store: eviction went untested');
  });
}
