// The compact store's id index: open addressing with linear probing, kept at most half full and
// doubled when it would not be. Deleting shifts the following run back (no tombstones), so a
// long-running cache under churn never degrades into long probes. The index keeps no keys: it asks
// its owner whether a block holds a given id, so the id bytes live only once, in the slab.
//
// A bucket is three uint32s side by side: slot + 1 (0 = empty), the id's hash, and the block's
// address in GRAIN units. A lookup reads one bucket (one cache line, mostly) and then the block
// itself: with the hash and the address in the slot's own arrays, a lookup in a large store took
// two more random reads, each a cache and TLB miss (at 10^6 sessions they cost more than the rest
// of a GET).

import { GRAIN } from './slab_arena';

/** What the index needs to know of the blocks it points at. */
export interface SlotKeys {
  /** Whether the block at `address` holds exactly these id bytes. */
  holds(address: number, id: Uint8Array): boolean;
}

/** Block addresses are multiples of the arena's grain: a bucket stores address / GRAIN, which
 * fits a uint32 up to 64 GiB of slabs. */
export const ADDRESS_GRAIN = GRAIN;
/** Bytes of one bucket. */
export const BUCKET_BYTES = 12;
const STRIDE = 3;
const MAX_UNIT = 0xffffffff;
const MIN_BUCKETS = 16;

export class SlotIndex {
  readonly #keys: SlotKeys;
  #table = new Uint32Array(MIN_BUCKETS * STRIDE);
  #mask = MIN_BUCKETS - 1;
  #count = 0;

  constructor(keys: SlotKeys) {
    this.#keys = keys;
  }

  get buckets(): number {
    return this.#mask + 1;
  }

  /** The bucket holding `id` (whose hash is `hash`), or -1: read it with slotAt and addressAt. */
  find(id: Uint8Array, hash: number): number {
    const table = this.#table;
    const mask = this.#mask;
    const keys = this.#keys;
    const want = hash >>> 0;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const at = i * STRIDE;
      if (table[at] === 0) return -1;
      if (table[at + 1] === want && keys.holds(table[at + 2]! * ADDRESS_GRAIN, id)) return i;
    }
  }

  /** The slot in bucket `bucket` (a find result). */
  slotAt(bucket: number): number {
    return this.#table[bucket * STRIDE]! - 1;
  }

  /** The block address in bucket `bucket` (a find result). */
  addressAt(bucket: number): number {
    return this.#table[bucket * STRIDE + 2]! * ADDRESS_GRAIN;
  }

  /** Adds `slot` (not in the index yet), its id's hash and its block's address. */
  insert(slot: number, hash: number, address: number): void {
    const unit = address / ADDRESS_GRAIN;
    if (!(unit <= MAX_UNIT && Number.isInteger(unit))) throw new RangeError(`Block address ${address} is not a multiple of ${ADDRESS_GRAIN} under ${ADDRESS_GRAIN * (MAX_UNIT + 1)}`);
    if ((this.#count + 1) * 2 > this.#mask + 1) this.#grow();
    this.#place(this.#table, this.#mask, slot + 1, hash >>> 0, unit);
    this.#count++;
  }

  /** Removes `slot` (which is in the index under `hash`). */
  delete(slot: number, hash: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let i = hash & mask;
    while (table[i * STRIDE] !== slot + 1) i = (i + 1) & mask;
    this.deleteAt(i);
  }

  /** Removes the entry in bucket `bucket` (a find result with no change to the index since): a
   * REMOVE that found its bucket does not probe for it a second time. */
  deleteAt(bucket: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let i = bucket;
    // Backward shift: move each later entry of the run into the hole when the hole lies between
    // its home bucket and where it sits now.
    for (let j = (i + 1) & mask; table[j * STRIDE] !== 0; j = (j + 1) & mask) {
      const home = table[j * STRIDE + 1]! & mask;
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (between) continue;
      const to = i * STRIDE;
      const from = j * STRIDE;
      table[to] = table[from]!;
      table[to + 1] = table[from + 1]!;
      table[to + 2] = table[from + 2]!;
      i = j;
    }
    table[i * STRIDE] = 0;
    this.#count--;
  }

  clear(): void {
    this.#table = new Uint32Array(MIN_BUCKETS * STRIDE);
    this.#mask = MIN_BUCKETS - 1;
    this.#count = 0;
  }

  #place(table: Uint32Array, mask: number, entry: number, hash: number, unit: number): void {
    let i = hash & mask;
    while (table[i * STRIDE] !== 0) i = (i + 1) & mask;
    const at = i * STRIDE;
    table[at] = entry;
    table[at + 1] = hash;
    table[at + 2] = unit;
  }

  #grow(): void {
    const old = this.#table;
    const buckets = (this.#mask + 1) * 2;
    const table = new Uint32Array(buckets * STRIDE);
    const mask = buckets - 1;
    for (let at = 0; at < old.length; at += STRIDE) if (old[at] !== 0) this.#place(table, mask, old[at]!, old[at + 1]!, old[at + 2]!);
    this.#table = table;
    this.#mask = mask;
  }
}
