// The SessionStore contract, checked as a property: random operations (seeded, so a failure
// reproduces) go to a store and to a plain reference model of the C server's semantics, and every
// answer must agree. Each store that takes the engine's place gets a line in STORES.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../../src/cache/stores/memory_store';
import type { SessionStore } from '../../../src/cache/stores/session_store';
import { seededRandom } from '../random';

interface Stored {
  readonly key: string;
  readonly data: Buffer;
  readonly expiry: number;
  readonly seq: number;
}

/** The semantics by the letter, in linear time: strict expiry, duplicates refused, a full cache
 * evicting max(1, floor(capacity / 30)) soonest-expiring sessions (ties: first added). */
class ReferenceStore implements SessionStore {
  readonly #capacity: number;
  #sessions: Stored[] = [];
  #seq = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  #live(now: number): Stored[] {
    this.#sessions = this.#sessions.filter((s) => !(now > s.expiry));
    return this.#sessions;
  }

  #find(now: number, id: Uint8Array): Stored | undefined {
    const key = Buffer.from(id).toString('hex');
    return this.#live(now).find((s) => s.key === key);
  }

  add(now: number, id: Uint8Array, data: Uint8Array, timeoutMs: number): boolean {
    if (this.#find(now, id) !== undefined) return false;
    if (this.#capacity > 0 && this.#sessions.length >= this.#capacity) {
      const order = [...this.#sessions].sort((a, b) => a.expiry - b.expiry || a.seq - b.seq);
      const evicted = new Set(order.slice(0, Math.max(1, Math.floor(this.#capacity / 30))));
      this.#sessions = this.#sessions.filter((s) => !evicted.has(s));
    }
    this.#sessions.push({ key: Buffer.from(id).toString('hex'), data: Buffer.from(data), expiry: now + timeoutMs, seq: this.#seq++ });
    return true;
  }

  get(now: number, id: Uint8Array): Buffer | undefined {
    const found = this.#find(now, id);
    return found === undefined ? undefined : Buffer.from(found.data);
  }

  remove(now: number, id: Uint8Array): boolean {
    const found = this.#find(now, id);
    this.#sessions = this.#sessions.filter((s) => s !== found);
    return found !== undefined;
  }

  have(now: number, id: Uint8Array): boolean {
    return this.#find(now, id) !== undefined;
  }

  size(now: number): number {
    return this.#live(now).length;
  }

  close(): Promise<void> {
    this.#sessions = [];
    return Promise.resolve();
  }
}

const STORES: ReadonlyArray<{ readonly name: string; readonly capacity: number; readonly make: () => SessionStore }> = [
  { name: 'MemoryStore of 64', capacity: 64, make: () => new MemoryStore({ capacity: 64 }) },
  { name: 'MemoryStore with no count limit', capacity: 0, make: () => new MemoryStore({ capacity: 0 }) },
];

/** Runs `steps` random calls on both; returns how many ADDs met a full store. */
function compare(store: SessionStore, reference: ReferenceStore, capacity: number, seed: number, steps: number): number {
  const rand = seededRandom(seed);
  let now = 0;
  let full = 0;
  for (let step = 0; step < steps; step++) {
    // Integer times and timeouts make equal expiries common, so the tie order is exercised.
    now += rand(3);
    const id = Buffer.from([rand(2), rand(150)]);
    const where = `seed ${seed} step ${step} now ${now} id ${id.toString('hex')}`;
    switch (rand(5)) {
      case 0:
      case 1: {
        const data = Buffer.alloc(rand(24), rand(256));
        const timeoutMs = rand(1000);
        if (capacity > 0 && reference.size(now) >= capacity) full++;
        assert.equal(store.add(now, id, data, timeoutMs), reference.add(now, id, data, timeoutMs), where);
        break;
      }
      case 2:
        assert.deepEqual(store.get(now, id), reference.get(now, id), where);
        break;
      case 3:
        assert.equal(store.remove(now, id), reference.remove(now, id), where);
        break;
      default:
        assert.equal(store.have(now, id), reference.have(now, id), where);
    }
    assert.equal(store.size(now), reference.size(now), where);
  }
  return full;
}

for (const { name, capacity, make } of STORES) {
  test(`${name} answers every call as the reference model does when driven by random operations`, async () => {
    let full = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const store = make();
      full += compare(store, new ReferenceStore(capacity), capacity, seed, 2000);
      await store.close();
    }
    if (capacity > 0) assert.ok(full > 0, 'the random operations never filled the store: eviction went untested');
  });
}
