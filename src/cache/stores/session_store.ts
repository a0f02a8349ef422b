// What the cache engine needs from a session store, and all it needs: a store is anything that
// keeps sessions by id with strict, non-sliding expiry. The engine owns the clock and passes
// `now` (ms) into every call, so a store never reads time itself and tests can drive it.
//
// Synchronous on purpose for now: the engine answers each request within the connection's read
// loop, in order, corked with its neighbours. A store that must wait (Redis) will need that loop
// to queue answers in order; that change is made together with that store, and the shape of each
// method (ids and data in, booleans and data out) stays as it is.

import type { InPlaceHit, OutputArea } from '../output_area';

/** One stored session as entries() yields it: copies, with the absolute expiry (the session
 * expires when now > expiresAt), so a snapshot reloads it by add(now, id, data, expiresAt - now). */
export interface StoredSession {
  readonly id: Buffer;
  readonly data: Buffer;
  readonly expiresAt: number;
}

/** What a store has done since it was made (dc_server's metrics read these). */
export interface StoreStats {
  /** Sessions held (expired ones not yet purged included). */
  readonly sessions: number;
  /** Bytes the store counts against its byte bound. */
  readonly bytes: number;
  readonly added: number;
  readonly expired: number;
  readonly evicted: number;
  readonly removed: number;
}

export interface SessionStore {
  /** Stores a copy of `data` under `id` until now + timeoutMs. False (nothing stored) when an
   * unexpired session with this id exists: the old one keeps its data and expiry. */
  add(now: number, id: Uint8Array, data: Uint8Array, timeoutMs: number): boolean;
  /** A copy of the session's data, or undefined when there is no unexpired session. Reading
   * does not extend a session's life. With `headroom`, the copy starts that many bytes into the
   * returned buffer, the bytes before it left for the caller (the engine writes a response's
   * frame header there: the answer to a GET is one buffer, made once). */
  get(now: number, id: Uint8Array, headroom?: number): Buffer | undefined;
  /** get() straight into `output` (optional: a store without it answers through get()): on a hit,
   * claims hit.headroom + the data's length there, copies the data after the headroom and calls
   * hit.frame. WROTE, MISSED, or NOT_IN_PLACE (no room, or data over hit.maxLength: nothing
   * claimed; ask get()). */
  getInto?(now: number, id: Uint8Array, output: OutputArea, hit: InPlaceHit): number;
  /** Drops the session; false when there was no unexpired one. */
  remove(now: number, id: Uint8Array): boolean;
  /** Whether an unexpired session with this id exists. */
  have(now: number, id: Uint8Array): boolean;
  /** Unexpired sessions at `now`. */
  size(now: number): number;
  /** Every unexpired session at `now` (purges first), first added first, so adding them back in
   * this order keeps the eviction order of ties. */
  entries(now: number): Iterable<StoredSession>;
  readonly stats: StoreStats;
  /** Releases what the store holds; the store is not used afterwards. */
  close(): Promise<void>;
}
