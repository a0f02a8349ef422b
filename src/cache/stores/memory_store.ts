// The in-memory SessionStore, dc_server's default: sessions by id with strict, non-sliding
// expiry and the C server's eviction order, in O(1) (lookups, a Map) and O(log n) (expiry order,
// a heap) per operation instead of the original's linear scans of a sorted array.
//
// Semantics kept from libdistcacheserver/dc_server_default.c: a session expires when now >
// add_time + timeout (strictly); expired sessions are purged before every lookup; a duplicate ADD
// of an unexpired id keeps the old session and its expiry; a full cache evicts
// max(1, floor(N/30)) soonest-expiring sessions (ties: first added) before storing. Unlike the C
// server, evicted sessions are freed (it leaked them), and with no count limit a byte bound evicts
// in the same order. The clock is passed in by the caller (now, in ms).

import { ExpiryHeap, type HeapEntry } from './expiry_heap';
import type { SessionStore, StoreStats, StoredSession } from './session_store';

/** DC_CACHE_MIN_SIZE in the C server. */
export const MIN_CAPACITY = 64;
/** The C server stops at 60000 (DC_CACHE_MAX_SIZE); a heap has no reason to. */
export const MAX_CAPACITY = 10_000_000;
/** dc_server's -sessions default. */
export const DEFAULT_CAPACITY = 512;
/** Byte bound used when there is no count limit (capacity 0) and none was given. */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
/** Smallest byte bound: one largest session must fit. */
export const MIN_MAX_BYTES = 64 * 1024;
/** Bookkeeping counted per session on top of id and data (map slot, heap slot, entry object,
 * two string headers), measured at about 150 bytes on Node 20. */
export const ENTRY_OVERHEAD_BYTES = 160;
/** The C server's expire_delta divisor: a full cache evicts N/30 sessions at once. */
export const EVICTION_DIVISOR = 30;

export interface MemoryStoreOptions {
  /** Session count limit, MIN_CAPACITY..MAX_CAPACITY, or 0 for no count limit. */
  readonly capacity: number;
  /** Bound on stored bytes (ids + data + ENTRY_OVERHEAD_BYTES each). Default: DEFAULT_MAX_BYTES
   * when capacity is 0, no bound otherwise. */
  readonly maxBytes?: number;
}

/** The bounds an in-memory store keeps, checked (RangeError when out of range). */
export function checkStoreBounds(options: MemoryStoreOptions): { capacity: number; maxBytes: number; evictionBatch: number } {
  const { capacity } = options;
  if (!Number.isInteger(capacity) || (capacity !== 0 && (capacity < MIN_CAPACITY || capacity > MAX_CAPACITY))) {
    throw new RangeError(`Session capacity ${capacity} is out of range: use ${MIN_CAPACITY}..${MAX_CAPACITY}, or 0 for no count limit`);
  }
  const maxBytes = options.maxBytes ?? (capacity === 0 ? DEFAULT_MAX_BYTES : Infinity);
  if (!(maxBytes >= MIN_MAX_BYTES)) {
    throw new RangeError(`Session byte bound ${maxBytes} is too small: use at least ${MIN_MAX_BYTES} bytes`);
  }
  return { capacity, maxBytes, evictionBatch: Math.max(1, Math.floor(capacity / EVICTION_DIVISOR)) };
}

interface Session extends HeapEntry {
  readonly key: string;
  /** The data bytes as a latin1 string: one compact V8 object instead of a Buffer, an
   * ArrayBuffer and an off-heap block, which triples the per-session cost of small sessions. */
  readonly data: string;
  readonly cost: number;
}

/** Ids (and data) are opaque bytes; latin1 maps each byte to one char and back, so equal keys
 * mean equal bytes. */
function keyOf(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.length).toString('latin1');
}

export class MemoryStore implements SessionStore {
  readonly capacity: number;
  readonly maxBytes: number;
  /** How many sessions a full cache evicts at once: max(1, floor(capacity / 30)). */
  readonly evictionBatch: number;
  readonly #byId = new Map<string, Session>();
  readonly #heap = new ExpiryHeap<Session>();
  #bytes = 0;
  #seq = 0;
  #added = 0;
  #expired = 0;
  #evicted = 0;
  #removed = 0;

  constructor(options: MemoryStoreOptions) {
    const bounds = checkStoreBounds(options);
    this.capacity = bounds.capacity;
    this.maxBytes = bounds.maxBytes;
    this.evictionBatch = bounds.evictionBatch;
  }

  /**
   * Stores a copy of `data` under `id` until now + timeoutMs. Returns false (and changes nothing
   * but the purge) when an unexpired session with this id exists.
   */
  add(now: number, id: Uint8Array, data: Uint8Array, timeoutMs: number): boolean {
    this.purge(now);
    const key = keyOf(id);
    if (this.#byId.has(key)) return false;
    if (this.capacity > 0 && this.#byId.size >= this.capacity) this.#evict(this.evictionBatch);
    const cost = id.length + data.length + ENTRY_OVERHEAD_BYTES;
    while (this.#bytes + cost > this.maxBytes && this.#heap.size > 0) this.#evict(1);
    // A copy, never a view: a view of the read buffer would pin the whole chunk for as long as
    // the session lives.
    const session: Session = { key, data: keyOf(data), cost, expiry: now + timeoutMs, seq: this.#seq++, index: -1 };
    this.#byId.set(key, session);
    this.#heap.push(session);
    this.#bytes += cost;
    this.#added++;
    return true;
  }

  /** A fresh copy of the stored data (after `headroom` bytes), or undefined. GET does not
   * extend the session's life. */
  get(now: number, id: Uint8Array, headroom = 0): Buffer | undefined {
    this.purge(now);
    const session = this.#byId.get(keyOf(id));
    if (session === undefined) return undefined;
    if (headroom === 0) return Buffer.from(session.data, 'latin1');
    const copy = Buffer.allocUnsafe(headroom + session.data.length);
    copy.write(session.data, headroom, 'latin1');
    return copy;
  }

  have(now: number, id: Uint8Array): boolean {
    this.purge(now);
    return this.#byId.has(keyOf(id));
  }

  remove(now: number, id: Uint8Array): boolean {
    this.purge(now);
    const session = this.#byId.get(keyOf(id));
    if (session === undefined) return false;
    this.#drop(session);
    this.#removed++;
    return true;
  }

  /** Unexpired sessions at `now` (purges first, like the C cache_items_stored). */
  size(now: number): number {
    this.purge(now);
    return this.#byId.size;
  }

  /** The Map keeps insertion order, which is the order of `seq`: first added first. */
  *entries(now: number): Iterable<StoredSession> {
    this.purge(now);
    for (const s of this.#byId.values()) {
      yield { id: Buffer.from(s.key, 'latin1'), data: Buffer.from(s.data, 'latin1'), expiresAt: s.expiry };
    }
  }

  /** Drops every session with now > expiry; returns how many. */
  purge(now: number): number {
    let n = 0;
    for (let top = this.#heap.peek(); top !== undefined && now > top.expiry; top = this.#heap.peek()) {
      this.#drop(top);
      n++;
    }
    this.#expired += n;
    return n;
  }

  /** Drops every session (nothing to wait for: there is no connection to close). */
  close(): Promise<void> {
    this.#byId.clear();
    this.#heap.clear();
    this.#bytes = 0;
    return Promise.resolve();
  }

  get stats(): StoreStats {
    return {
      sessions: this.#byId.size,
      bytes: this.#bytes,
      added: this.#added,
      expired: this.#expired,
      evicted: this.#evicted,
      removed: this.#removed,
    };
  }

  /** Heap sift steps so far (diagnostics: proves per-operation cost is O(log n)). */
  get heapSteps(): number {
    return this.#heap.steps;
  }

  #evict(count: number): void {
    for (let i = 0; i < count; i++) {
      const top = this.#heap.peek();
      if (top === undefined) return;
      this.#drop(top);
      this.#evicted++;
    }
  }

  #drop(session: Session): void {
    this.#heap.remove(session);
    this.#byId.delete(session.key);
    this.#bytes -= session.cost;
  }
}
