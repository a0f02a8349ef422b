// The distcache engine: one session store, the clock and the counters dc_server's -progress line
// reads, and the answer to each request message. A connection (./session) feeds it messages; it
// never sees sockets. Imports go one way: engine -> session -> wire, engine -> stores.

import { performance } from 'node:perf_hooks';
import type { Connection } from '../activation/connection';
import type { Logger } from '../log/index';
import { DEFAULT_CAPACITY } from './stores/memory_store';
import { SlabStore } from './stores/slab_store';
import type { SessionStore } from './stores/session_store';
import { decodeAddPayload, encodeMessage, Operation, Status, type Message } from './wire/index';
import { serveCacheConnection, type Answer, type CacheSessionEngine } from './session';

export interface CacheEngineOptions {
  /** Where sessions live. Default: a SlabStore of DEFAULT_CAPACITY sessions. */
  readonly store?: SessionStore;
  /** Milliseconds, wall-clock anchored and not jumping backwards. Default: performance time. */
  readonly clock?: () => number;
  /** Close a connection idle this long in both directions (ms); 0 or absent = never. */
  readonly idleMs?: number;
  /** Called after each request is answered (dc_server looks at its -progress line there). */
  readonly afterAnswer?: () => void;
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

export interface CacheEngine extends CacheSessionEngine {
  readonly stats: CacheStats;
  readonly clock: () => number;
  /** Answers one request message (counted in stats.operations when it gets a response). */
  answer(message: Message): Answer;
  /** The ConnectionHandler dc_server runs: serves one connection until it ends (see
   * serveCacheConnection). */
  serve(conn: Connection): Promise<void>;
  /** Closes the store; call once no connection is served any more. */
  close(): Promise<void>;
}

/** Fractional milliseconds since the epoch, from a monotonic source (no jumps when NTP steps). */
export function defaultClock(): number {
  return performance.timeOrigin + performance.now();
}

/** One shared one-byte payload per status (the Redis engine answers with them too). */
const STATUS_PAYLOADS: ReadonlyMap<number, Buffer> = new Map(Object.values(Status).map((s) => [s, Buffer.from([s])]));

export function status(s: Status): Buffer {
  return STATUS_PAYLOADS.get(s)!;
}

/** The response payload the store gives one request at `now`, or why the connection must close. */
function payloadFor(store: SessionStore, now: number, message: Message): Buffer | { reason: string } {
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
      return status(store.have(now, payload) ? Status.OK : Status.NOTOK);
  }
}

export function createCacheEngine(options: CacheEngineOptions): CacheEngine {
  const store = options.store ?? new SlabStore({ capacity: DEFAULT_CAPACITY });
  const clock = options.clock ?? defaultClock;

  const answerOf = (message: Message): Answer => {
    const payload = payloadFor(store, clock(), message);
    if (!Buffer.isBuffer(payload)) return { kind: 'close', reason: payload.reason };
    return { kind: 'respond', bytes: encodeMessage({ isResponse: true, uid: message.uid, operation: message.operation }, payload) };
  };

  return assembleEngine({ answer: answerOf, sessions: () => store.size(clock()), close: () => store.close() }, { ...options, clock });
}

/** What one kind of store brings to an engine; assembleEngine adds the rest. */
export interface EngineCore {
  /** The answer to one request (now, or later for a store over the network). */
  answer(message: Message): Answer;
  /** Sessions held now, for the statistics line. */
  sessions(): number;
  close(): Promise<void>;
}

/** An engine around `core`: the counters (an operation is a request answered with a response),
 * the connection bookkeeping and serve. The in-memory engine and the Redis one (./redis_engine)
 * are both made by it. */
export function assembleEngine(core: EngineCore, options: Omit<CacheEngineOptions, 'store'>): CacheEngine {
  const clock = options.clock ?? defaultClock;
  let operations = 0;
  let connections = 0;
  let dropped = 0;

  const answered = (answer: Answer): Answer => {
    if (answer.kind === 'respond') operations++;
    options.afterAnswer?.();
    return answer;
  };

  const engine: CacheEngine = {
    clock,
    log: options.log,
    stats: {
      get operations() {
        return operations;
      },
      get sessions() {
        return core.sessions();
      },
      get connections() {
        return connections;
      },
      get dropped() {
        return dropped;
      },
    },
    answer(message) {
      const answer = core.answer(message);
      return answer.kind === 'later' ? { kind: 'later', promise: answer.promise.then(answered) } : answered(answer);
    },
    serve(conn) {
      return serveCacheConnection(conn, engine, { idleMs: options.idleMs ?? 0 });
    },
    noteConnection(change) {
      if (change === 'open') connections++;
      else if (change === 'close') connections--;
      else dropped++;
    },
    close() {
      return core.close();
    },
  };
  return engine;
}
