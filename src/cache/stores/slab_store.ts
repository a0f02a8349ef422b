// The compact in-memory SessionStore, dc_server's default. Same observable semantics as
// MemoryStore (strict expiry, purge before every lookup, duplicate ADD keeps the old session,
// a full cache evicts max(1, floor(N/30)) soonest-expiring sessions, first added first on ties,
// no count limit bounded by bytes), in a layout the garbage collector has almost nothing to walk:
// - each session is a slot number; its expiry, insertion seq, heap position, id hash and block
//   address sit in typed arrays (SLOT_BYTES a slot), grown by doubling up to the capacity, so a
//   large -sessions reserves nothing up front;
// - id and data bytes live in one block of a slab (./slab_arena), header [id_len u16][data_len u16];
// - the id index is open addressing over slot numbers with each id's hash and block address beside
//   them (./slot_index), the expiry order a binary heap of slot numbers in an Int32Array.
// Freed slots and blocks are reused first, so the store stops growing under churn.

import { randomBytes } from 'node:crypto';
import { SlabArena } from './slab_arena';
import { BUCKET_BYTES, SlotIndex } from './slot_index';
import { checkStoreBounds, type MemoryStoreOptions } from './memory_store';
import type { SessionStore, StoreStats, StoredSession } from './session_store';
import { MISSED, NOT_IN_PLACE, WROTE, type InPlaceHit, type OutputArea } from '../output_area';

/** Block header: id length and data length, u16 each. */
const HEADER = 4;
/** Largest id and data a block holds (ids on the wire are at most 64 bytes, data under 32 KiB). */
const MAX_ID = 0xffff;
const MAX_DATA = 0xffff;
/** Bytes of typed arrays per slot: expiry, seq and address (8 each), hash, heap position and
 * heap entry (4 each). */
const SLOT_BYTES = 36;
/** Bytes counted per session against the byte bound besides its block: the slot and the index
 * at half load (2 x BUCKET_BYTES), rounded up. */
export const SLOT_OVERHEAD_BYTES = 64;
/** Slot arrays start this small and double: a store of 10^7 reserves nothing up front. */
const FIRST_SLOTS = 64;

export class SlabStore implements SessionStore {
  readonly capacity: number;
  readonly maxBytes: number;
  readonly evictionBatch: number;
  readonly #arena = new SlabArena(HEADER + MAX_ID + MAX_DATA);
  readonly #index: SlotIndex;
  readonly #seed = randomBytes(4).readInt32LE(0);
  #expiry = new Float64Array(FIRST_SLOTS);
  #seq = new Float64Array(FIRST_SLOTS);
  /** Block address of a used slot; the next free slot of a free one. */
  #address = new Float64Array(FIRST_SLOTS);
  /** The id's hash (the index has it too; this copy finds the slot's bucket when it goes). */
  #hash = new Int32Array(FIRST_SLOTS);
  #heapPos = new Int32Array(FIRST_SLOTS);
  #heap = new Int32Array(FIRST_SLOTS);
  #count = 0;
  /** Slots ever used (slots below it are in use or on the free list). */
  #highWater = 0;
  #freeSlot = -1;
  #nextSeq = 0;
  #bytes = 0;
  #added = 0;
  #expired = 0;
  #evicted = 0;
  #removed = 0;

  constructor(options: MemoryStoreOptions) {
    const bounds = checkStoreBounds(options);
    this.capacity = bounds.capacity;
    this.maxBytes = bounds.maxBytes;
    this.evictionBatch = bounds.evictionBatch;
    this.#index = new SlotIndex({ holds: (address, id) => this.#holds(address, id) });
  }

  add(now: number, id: Uint8Array, data: Uint8Array, timeoutMs: number): boolean {
    if (id.length > MAX_ID || data.length > MAX_DATA) throw new RangeError(`Session of a ${id.length}-byte id and ${data.length} bytes of data is above ${MAX_ID}/${MAX_DATA}`);
    this.purge(now);
    const hash = this.#hashOf(id);
    if (this.#index.find(id, hash) >= 0) return false;
    if (this.capacity > 0 && this.#count >= this.capacity) this.#evict(this.evictionBatch);
    const size = HEADER + id.length + data.length;
    const cost = SlabArena.blockSize(size) + SLOT_OVERHEAD_BYTES;
    while (this.#bytes + cost > this.maxBytes && this.#count > 0) this.#evict(1);
    const slot = this.#takeSlot();
    const address = this.#arena.allocate(size);
    const slab = this.#arena.slabOf(address);
    const at = this.#arena.offsetOf(address);
    slab.writeUInt16LE(id.length, at);
    slab.writeUInt16LE(data.length, at + 2);
    slab.set(id, at + HEADER);
    slab.set(data, at + HEADER + id.length);
    this.#address[slot] = address;
    this.#hash[slot] = hash;
    this.#expiry[slot] = now + timeoutMs;
    this.#seq[slot] = this.#nextSeq++;
    this.#index.insert(slot, hash, address);
    this.#heapPush(slot);
    this.#count++;
    this.#bytes += cost;
    this.#added++;
    return true;
  }

  get(now: number, id: Uint8Array, headroom = 0): Buffer | undefined {
    const bucket = this.#find(now, id);
    if (bucket < 0) return undefined;
    const address = this.#index.addressAt(bucket);
    const slab = this.#arena.slabOf(address);
    const at = this.#arena.offsetOf(address);
    const start = at + HEADER + slab.readUInt16LE(at);
    const length = slab.readUInt16LE(at + 2);
    const copy = Buffer.allocUnsafe(headroom + length);
    this.#arena.copyOut(address, start, length, copy, headroom);
    return copy;
  }

  getInto(now: number, id: Uint8Array, output: OutputArea, hit: InPlaceHit): number {
    const bucket = this.#find(now, id);
    if (bucket < 0) return MISSED;
    const address = this.#index.addressAt(bucket);
    const slab = this.#arena.slabOf(address);
    const at = this.#arena.offsetOf(address);
    const length = slab.readUInt16LE(at + 2);
    if (length > hit.maxLength) return NOT_IN_PLACE;
    const into = output.claim(hit.headroom + length);
    if (into < 0) return NOT_IN_PLACE;
    this.#arena.copyOut(address, at + HEADER + slab.readUInt16LE(at), length, output.bytes, into + hit.headroom);
    hit.frame(output.bytes, into, length);
    return WROTE;
  }

  have(now: number, id: Uint8Array): boolean {
    return this.#find(now, id) >= 0;
  }

  remove(now: number, id: Uint8Array): boolean {
    const bucket = this.#find(now, id);
    if (bucket < 0) return false;
    this.#drop(this.#index.slotAt(bucket), bucket);
    this.#removed++;
    return true;
  }

  size(now: number): number {
    this.purge(now);
    return this.#count;
  }

  *entries(now: number): Iterable<StoredSession> {
    this.purge(now);
    for (const slot of this.#slotsInAddOrder()) {
      const slab = this.#arena.slabOf(this.#address[slot]!);
      const at = this.#arena.offsetOf(this.#address[slot]!);
      const idLength = slab.readUInt16LE(at);
      const start = at + HEADER;
      // One copy holds both: a snapshot of 10^6 sessions makes half the allocations.
      const copy = Buffer.from(slab.subarray(start, start + idLength + slab.readUInt16LE(at + 2)));
      yield { id: copy.subarray(0, idLength), data: copy.subarray(idLength), expiresAt: this.#expiry[slot]! };
    }
  }

  /** The used slots, first added first. Sorting slots with a comparator on their seq cost a
   * third of a snapshot's write at 10^6 sessions: each (seq, slot) pair is packed into one
   * float64 instead, (seq - oldest) * 2^bits + slot, and sorted as numbers (a typed sort without
   * callbacks). Seqs are unique, so the order is exact; when a store's seqs span too far to pack
   * exactly, slotsBySeq places each slot at its seq's rank. */
  #slotsInAddOrder(): Int32Array {
    const n = this.#count;
    const heap = this.#heap;
    const seq = this.#seq;
    let oldest = Infinity;
    let newest = -Infinity;
    for (let i = 0; i < n; i++) {
      const s = seq[heap[i]!]!;
      if (s < oldest) oldest = s;
      if (s > newest) newest = s;
    }
    const scale = 2 ** Math.ceil(Math.log2(this.#highWater + 1));
    if (n === 0 || (newest - oldest + 1) * scale > Number.MAX_SAFE_INTEGER) return slotsBySeq(heap.subarray(0, n), seq);
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const slot = heap[i]!;
      keys[i] = (seq[slot]! - oldest) * scale + slot;
    }
    keys.sort();
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = keys[i]! % scale;
    return order;
  }

  /** Drops every session with now > expiry; returns how many. */
  purge(now: number): number {
    let n = 0;
    while (this.#count > 0 && now > this.#expiry[this.#heap[0]!]!) {
      this.#drop(this.#heap[0]!);
      n++;
    }
    this.#expired += n;
    return n;
  }

  close(): Promise<void> {
    this.#arena.clear();
    this.#index.clear();
    this.#count = 0;
    this.#highWater = 0;
    this.#freeSlot = -1;
    this.#bytes = 0;
    return Promise.resolve();
  }

  get stats(): StoreStats {
    return { sessions: this.#count, bytes: this.#bytes, added: this.#added, expired: this.#expired, evicted: this.#evicted, removed: this.#removed };
  }

  /** Bytes the store holds from the system: slabs and typed arrays (diagnostics for the bench). */
  get reservedBytes(): number {
    return this.#arena.slabBytes + this.#expiry.length * SLOT_BYTES + this.#index.buckets * BUCKET_BYTES;
  }

  /** The index bucket of the unexpired session with this id, or -1. */
  #find(now: number, id: Uint8Array): number {
    this.purge(now);
    return this.#count === 0 ? -1 : this.#index.find(id, this.#hashOf(id));
  }

  /** Murmur3-style mixing of four bytes a round from a random seed, then murmur3's finaliser so
   * the low bits (the bucket) depend on every byte. The seed keeps a peer from aiming ids at one
   * bucket run. */
  #hashOf(id: Uint8Array): number {
    let h = this.#seed ^ id.length;
    const whole = id.length & ~3;
    for (let i = 0; i < whole; i += 4) {
      let k = id[i]! | (id[i + 1]! << 8) | (id[i + 2]! << 16) | (id[i + 3]! << 24);
      k = Math.imul(k, 0xcc9e2d51);
      k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
      h ^= k;
      h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
    }
    for (let i = whole; i < id.length; i++) h = Math.imul(h ^ id[i]!, 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  #holds(address: number, id: Uint8Array): boolean {
    const slab = this.#arena.slabOf(address);
    const at = this.#arena.offsetOf(address);
    if (slab.readUInt16LE(at) !== id.length) return false;
    const start = at + HEADER;
    for (let i = 0; i < id.length; i++) if (slab[start + i] !== id[i]) return false;
    return true;
  }

  #evict(count: number): void {
    for (let i = 0; i < count && this.#count > 0; i++) {
      this.#drop(this.#heap[0]!);
      this.#evicted++;
    }
  }

  /** Frees `slot`; `bucket` is its index bucket when the caller found it (else probed for). */
  #drop(slot: number, bucket = -1): void {
    const address = this.#address[slot]!;
    const slab = this.#arena.slabOf(address);
    const at = this.#arena.offsetOf(address);
    const size = HEADER + slab.readUInt16LE(at) + slab.readUInt16LE(at + 2);
    this.#heapRemove(slot);
    if (bucket >= 0) this.#index.deleteAt(bucket);
    else this.#index.delete(slot, this.#hash[slot]!);
    this.#arena.release(address, size);
    this.#bytes -= SlabArena.blockSize(size) + SLOT_OVERHEAD_BYTES;
    this.#count--;
    this.#address[slot] = this.#freeSlot;
    this.#freeSlot = slot;
  }

  #takeSlot(): number {
    if (this.#freeSlot >= 0) {
      const slot = this.#freeSlot;
      this.#freeSlot = this.#address[slot]!;
      return slot;
    }
    if (this.#highWater === this.#expiry.length) this.#growSlots();
    return this.#highWater++;
  }

  /** Doubles the slot arrays (up to the capacity): the only copy, amortised O(1) per ADD. */
  #growSlots(): void {
    const n = this.capacity > 0 ? Math.min(this.capacity, this.#expiry.length * 2) : this.#expiry.length * 2;
    const grow = <T extends Float64Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const next = make(n);
      next.set(old);
      return next;
    };
    this.#expiry = grow(this.#expiry, (k) => new Float64Array(k));
    this.#seq = grow(this.#seq, (k) => new Float64Array(k));
    this.#address = grow(this.#address, (k) => new Float64Array(k));
    this.#hash = grow(this.#hash, (k) => new Int32Array(k));
    this.#heapPos = grow(this.#heapPos, (k) => new Int32Array(k));
    this.#heap = grow(this.#heap, (k) => new Int32Array(k));
  }

  // ---- the expiry heap: slot numbers ordered by (expiry, seq), each slot knowing its position

  #before(a: number, b: number): boolean {
    const ea = this.#expiry[a]!;
    const eb = this.#expiry[b]!;
    return ea < eb || (ea === eb && this.#seq[a]! < this.#seq[b]!);
  }

  #heapPush(slot: number): void {
    this.#heap[this.#count] = slot;
    this.#heapPos[slot] = this.#count;
    this.#siftUp(this.#count);
  }

  /** Removes `slot` from the heap (called before #count drops). */
  #heapRemove(slot: number): void {
    const i = this.#heapPos[slot]!;
    const last = this.#count - 1;
    if (i === last) return;
    const moved = this.#heap[last]!;
    this.#heap[i] = moved;
    this.#heapPos[moved] = i;
    this.#siftUp(i);
    this.#siftDown(this.#heapPos[moved]!, last);
  }

  #siftUp(i: number): void {
    const heap = this.#heap;
    const slot = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!this.#before(slot, p)) break;
      heap[i] = p;
      this.#heapPos[p] = i;
      i = parent;
    }
    heap[i] = slot;
    this.#heapPos[slot] = i;
  }

  /** Sifts down within the first `n` heap entries. */
  #siftDown(i: number, n: number): void {
    const heap = this.#heap;
    const slot = heap[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.#before(heap[right]!, heap[left]!) ? right : left;
      const c = heap[child]!;
      if (!this.#before(c, slot)) break;
      heap[i] = c;
      this.#heapPos[c] = i;
      i = child;
    }
    heap[i] = slot;
    this.#heapPos[slot] = i;
  }
}

/** `slots` ordered by their (unique) seq: the seqs sorted as numbers, each slot put at its seq's
 * rank (a binary search). Slower than the packed sort of SlabStore#slotsInAddOrder, exact for any
 * seqs; exported for its test. */
export function slotsBySeq(slots: Int32Array, seq: Float64Array): Int32Array {
  const n = slots.length;
  const sorted = new Float64Array(n);
  for (let i = 0; i < n; i++) sorted[i] = seq[slots[i]!]!;
  sorted.sort();
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const slot = slots[i]!;
    const s = seq[slot]!;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < s) lo = mid + 1;
      else hi = mid;
    }
    order[lo] = slot;
  }
  return order;
}
