// The distcache engine: one session store, the clock and the counters dc_server's -progress line
// reads, and the answer to each request message. A connection (./session) feeds it messages; it
// never sees sockets.

import { performance } from 'node:perf_hooks';
import type { Connection } from '../activation/connection';
import type { Logger } from '../log/index';
import { DEFAULT_CAPACITY, SessionStore } from './store';
import { decodeAddPayload, encodeMessage, Operation, Status, type Message } from './wire/index';
import { serveCacheConnection } from './session';

export interface CacheEngineOptions {
  /** -sessions: MIN_CAPACITY..MAX_CAPACITY, or 0 for no count limit. Default 512. */
  readonly capacity?: number;
  /** Byte bound on stored sessions (see SessionStoreOptions.maxBytes). */
  readonly maxBytes?: number;
  /** Milliseconds, wall-clock anchored and not jumping backwards. Default: performance time. */
  readonly clock?: () => number;
  /** Close a connection idle this long in both directions (ms); 0 or absent = never. */
  readonly idleMs?: number;
  readonly log: Logger;
}

export interface CacheStats {
  /** Requests answered since start (the C "total operations"). */
  readonly operations: number;
  /** Unexpired sessions now (purges expired ones, like the C cache_items_stored). */
  readonly sessions: number;
  /** Connections being served now. */
  readonly connections: number;
  /** Connections closed because of a malformed request. */
  readonly dropped: number;
}

/** What one request gets: response bytes, or the connection closed without a response. */
export type Answer = { readonly kind: 'respond'; readonly bytes: Buffer } | { readonly kind: 'close'; readonly reason: string };

export interface CacheEngine {
  readonly store: SessionStore;
  readonly stats: CacheStats;
  readonly clock: () => number;
  readonly log: Logger;
  /** Answers one request message (counted in stats.operations when it gets a response). */
  answer(message: Message): Answer;
  /** A ConnectionHandler: serves one connection until it ends (see serveCacheConnection). */
  serve(conn: Connection): Promise<void>;
  /** Bookkeeping for serveCacheConnection. */
  noteConnection(change: 'open' | 'close' | 'dropped'): void;
}

/** Fractional milliseconds since the epoch, from a monotonic source (no jumps when NTP steps). */
export function defaultClock(): number {
  return performance.timeOrigin + performance.now();
}

const STATUS_PAYLOADS: ReadonlyMap<number, Buffer> = new Map(Object.values(Status).map((s) => [s, Buffer.from([s])]));

function status(s: Status): Buffer {
  return STATUS_PAYLOADS.get(s)!;
}

export function createCacheEngine(options: CacheEngineOptions): CacheEngine {
  const store = new SessionStore({
    capacity: options.capacity ?? DEFAULT_CAPACITY,
    ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
  });
  const clock = options.clock ?? defaultClock;
  let operations = 0;
  let connections = 0;
  let dropped = 0;

  const payloadFor = (message: Message): Buffer | { reason: string } => {
    const now = clock();
    const { payload } = message;
    switch (message.operation) {
      case Operation.ADD: {
        const add = decodeAddPayload(payload);
        if (add.kind === 'short') return { reason: `ADD payload of ${add.length} bytes is shorter than 8` };
        if (add.kind === 'rejected') return status(add.status);
        const { id, data, timeoutMs } = add.value;
        return status(store.add(now, id, data, timeoutMs) ? Status.OK : Status.ADD_MATCHING_SESSION);
      }
      case Operation.GET:
        // A miss is the single byte 0x01; libdistcache reads any answer under 5 bytes as a miss.
        return store.get(now, payload) ?? status(Status.NOTOK);
      case Operation.REMOVE:
        return status(store.remove(now, payload) ? Status.OK : Status.NOTOK);
      case Operation.HAVE:
        return status(store.has(now, payload) ? Status.OK : Status.NOTOK);
    }
  };

  const engine: CacheEngine = {
    store,
    clock,
    log: options.log,
    stats: {
      get operations() {
        return operations;
      },
      get sessions() {
        return store.count(clock());
      },
      get connections() {
        return connections;
      },
      get dropped() {
        return dropped;
      },
    },
    answer(message) {
      const payload = payloadFor(message);
      if (!Buffer.isBuffer(payload)) return { kind: 'close', reason: payload.reason };
      operations++;
      return { kind: 'respond', bytes: encodeMessage({ isResponse: true, uid: message.uid, operation: message.operation }, payload) };
    },
    serve(conn) {
      return serveCacheConnection(conn, engine, { idleMs: options.idleMs ?? 0 });
    },
    noteConnection(change) {
      if (change === 'open') connections++;
      else if (change === 'close') connections--;
      else dropped++;
    },
  };
  return engine;
}
