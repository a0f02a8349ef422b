// The compact store's id index: open addressing with linear probing over one Int32Array of slot
// numbers (slot + 1; 0 is an empty bucket), kept at most half full and doubled when it would not
// be. Deleting shifts the following run back (no tombstones), so a long-running cache under churn
// never degrades into long probes. The index keeps no keys: it asks its owner for a slot's hash
// and whether a slot holds a given id, so the id bytes live only once, in the slab.

/** What the index needs to know of the slots it points at. */
export interface SlotKeys {
  hashOf(slot: number): number;
  /** Whether `slot` holds exactly these id bytes. */
  holds(slot: number, id: Uint8Array): boolean;
}

const MIN_BUCKETS = 16;

export class SlotIndex {
  readonly #keys: SlotKeys;
  #table = new Int32Array(MIN_BUCKETS);
  #mask = MIN_BUCKETS - 1;
  #count = 0;

  constructor(keys: SlotKeys) {
    this.#keys = keys;
  }

  get buckets(): number {
    return this.#table.length;
  }

  /** The slot holding `id` (whose hash is `hash`), or -1. */
  find(id: Uint8Array, hash: number): number {
    const table = this.#table;
    const mask = this.#mask;
    const keys = this.#keys;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const entry = table[i]!;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (keys.hashOf(slot) === hash && keys.holds(slot, id)) return slot;
    }
  }

  /** Adds `slot` (not in the index yet). */
  insert(slot: number): void {
    if ((this.#count + 1) * 2 > this.#table.length) this.#grow();
    this.#place(this.#table, this.#mask, slot);
    this.#count++;
  }

  /** Removes `slot` (which is in the index). */
  delete(slot: number): void {
    const table = this.#table;
    const mask = this.#mask;
    const keys = this.#keys;
    let i = keys.hashOf(slot) & mask;
    while (table[i] !== slot + 1) i = (i + 1) & mask;
    // Backward shift: move each later entry of the run into the hole when the hole lies between
    // its home bucket and where it sits now.
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const home = keys.hashOf(table[j]! - 1) & mask;
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (between) continue;
      table[i] = table[j]!;
      i = j;
    }
    table[i] = 0;
    this.#count--;
  }

  clear(): void {
    this.#table = new Int32Array(MIN_BUCKETS);
    this.#mask = MIN_BUCKETS - 1;
    this.#count = 0;
  }

  #place(table: Int32Array, mask: number, slot: number): void {
    let i = this.#keys.hashOf(slot) & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  #grow(): void {
    const old = this.#table;
    const table = new Int32Array(old.length * 2);
    const mask = table.length - 1;
    for (const entry of old) if (entry !== 0) this.#place(table, mask, entry - 1);
    this.#table = table;
    this.#mask = mask;
  }
}
