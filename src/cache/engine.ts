// The distcache engine: one session store, the clock and the counters dc_server's -progress line
// reads, and the answer to each request message. A connection (./session) feeds it messages; it
// never sees sockets. Imports go one way: engine -> session -> wire, engine -> stores.

import { performance } from 'node:perf_hooks';
import type { Connection } from '../activation/connection';
import type { PumpedConnection } from '../activation/socket_pump';
import type { Logger } from '../log/index';
import { DEFAULT_CAPACITY } from './stores/memory_store';
import { SlabStore } from './stores/slab_store';
import type { SessionStore } from './stores/session_store';
// The wire's own modules, not ./wire/index: a binding re-exported with `export *` is a getter
// (TypeScript's __createBinding) whose shared keyed load went megamorphic, and the answer path
// read Operation.GET and writeFrameHeader through it on every request (2-3% of dc_server's CPU).
import { decodeAddPayload } from './wire/add_payload';
import { FRAME_HEADER_SIZE, MAX_FRAME_DATA, Operation, Status } from './wire/constants';
import { encodeMessage, writeFrameHeader } from './wire/frame';
import type { Message } from './wire/message_reader';
import { serveCacheConnection, type Answer, type CacheSessionEngine } from './session';
import { ANSWERED_IN_PLACE, PendingAnswer } from './answer_queue';
import { frameInto, MISSED, WROTE, type InPlaceHit, type OutputArea } from './output_area';
import { servePumpedConnection, servePumpedSocket } from './pumped_session';

export interface CacheEngineOptions {
  /** Where sessions live. Default: a SlabStore of DEFAULT_CAPACITY sessions. */
  readonly store?: SessionStore;
  /** Milliseconds, wall-clock anchored and not jumping backwards. Default: performance time. */
  readonly clock?: () => number;
  /** Close a connection idle this long in both directions (ms); 0 or absent = never. */
  readonly idleMs?: number;
  /**
   * Called after each request is answered (dc_server looks at its -progress line there, and its
   * metrics count the answer): the operation, how it was answered, and, for one answer in
   * ANSWER_TIMING_SAMPLE, performance.now() from just before it was worked out (its latency);
   * -1 for the others. A clock read costs about as much as a hash lookup: timing every answer
   * would cost the hot path a few percent, a sample of them nothing measurable.
   */
  readonly afterAnswer?: (operation: Operation, result: AnswerResult, startedMs: number) => void;
  readonly log: Logger;
}

/** One answer in this many is timed for afterAnswer (a power of two). */
export const ANSWER_TIMING_SAMPLE = 8;

/** How a request was answered: its status (a GET's hit or miss), or the connection closed. */
export type AnswerResult = 'ok' | 'notok' | 'hit' | 'miss' | 'exists' | 'rejected' | 'closed';

/** The result of a request answered with `payload` (one of the shared status buffers, or data). */
function resultOf(operation: Operation, payload: Buffer): AnswerResult {
  if (operation === Operation.GET) return payload === NOTOK ? 'miss' : 'hit';
  if (payload === OK) return 'ok';
  if (payload === NOTOK) return 'notok';
  return payload === STATUS_PAYLOADS.get(Status.ADD_MATCHING_SESSION) ? 'exists' : 'rejected';
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
  /** Answers one request message (counted in stats.operations when it gets a response); a GET
   * hit may be written into `output` (see ANSWERED_IN_PLACE). */
  answer(message: Message, output?: OutputArea): Answer;
  /** The ConnectionHandler dc_server runs: serves one connection until it ends (see
   * serveCacheConnection). */
  serve(conn: Connection): Promise<void>;
  /** The same for a connection the socket pump accepted (ServiceOptions.pumped): `finished` is
   * called once it ends (see PumpedConnectionHandler). */
  servePumped(conn: PumpedConnection, finished: () => void): void;
  /** Closes the store; call once no connection is served any more. */
  close(): Promise<void>;
}

let timeOrigin: number | undefined;

/** Fractional milliseconds since the epoch, from a monotonic source (no jumps when NTP steps). */
export function defaultClock(): number {
  // timeOrigin is a getter that checks its receiver on every read; it never changes.
  return (timeOrigin ??= performance.timeOrigin) + performance.now();
}

/** One shared one-byte payload per status (the Redis engine answers with them too). */
const STATUS_PAYLOADS: ReadonlyMap<number, Buffer> = new Map(Object.values(Status).map((s) => [s, Buffer.from([s])]));

export function status(s: Status): Buffer {
  return STATUS_PAYLOADS.get(s)!;
}

/** The two statuses of every HAVE and REMOVE, looked up once (a Map lookup per answer showed). */
const OK = status(Status.OK);
const NOTOK = status(Status.NOTOK);

/** The response payload the store gives one request at `now`, or why the connection must close. */
function payloadFor(store: SessionStore, now: number, message: Message): Buffer | { reason: string } {
  const { payload } = message;
  switch (message.operation) {
    case Operation.ADD: {
      const add = decodeAddPayload(payload);
      if (add.kind === 'short') return { reason: `ADD payload of ${add.length} bytes is shorter than 8` };
      if (add.kind === 'rejected') return status(add.status);
      const { id, data, timeoutMs } = add.value;
      return store.add(now, id, data, timeoutMs) ? OK : status(Status.ADD_MATCHING_SESSION);
    }
    case Operation.GET:
      // A miss is the single byte 0x01; libdistcache reads any answer under 5 bytes as a miss.
      return store.get(now, payload) ?? NOTOK;
    case Operation.REMOVE:
      return store.remove(now, payload) ? OK : NOTOK;
    case Operation.HAVE:
      return store.have(now, payload) ? OK : NOTOK;
  }
}

/** A GET's whole response when it hits: the data copied out of the store once, after room for
 * its frame header (a payload then encodeMessage copied it twice, into two new buffers). */
function framedHit(store: SessionStore, now: number, message: Message): Buffer | undefined {
  const framed = store.get(now, message.payload, FRAME_HEADER_SIZE);
  if (framed === undefined) return undefined;
  const length = framed.length - FRAME_HEADER_SIZE;
  if (length > MAX_FRAME_DATA) return encodeMessage({ isResponse: true, uid: message.uid, operation: message.operation }, framed.subarray(FRAME_HEADER_SIZE));
  writeFrameHeader(framed, 0, true, message.uid, message.operation, true, length);
  return framed;
}

/** A GET hit's frame header, written by the store behind the data it copied into an OutputArea
 * (one per engine, told each request's uid: nothing made per request). */
class GetFrame implements InPlaceHit {
  readonly headroom = FRAME_HEADER_SIZE;
  readonly maxLength = MAX_FRAME_DATA;
  uid = 0;

  frame(bytes: Buffer, at: number, length: number): void {
    writeFrameHeader(bytes, at, true, this.uid, Operation.GET, true, length);
  }
}

export function createCacheEngine(options: CacheEngineOptions): CacheEngine {
  const store = options.store ?? new SlabStore({ capacity: DEFAULT_CAPACITY });
  const clock = options.clock ?? defaultClock;
  const getFrame = new GetFrame();
  return assembleEngine(
    {
      payload: (message) => payloadFor(store, clock(), message),
      hit: (message) => framedHit(store, clock(), message),
      hitInto:
        store.getInto === undefined
          ? undefined
          : (message, output) => {
              getFrame.uid = message.uid;
              return store.getInto!(clock(), message.payload, output, getFrame);
            },
      sessions: () => store.size(clock()),
      close: () => store.close(),
    },
    { ...options, clock },
  );
}

/** What one request gets from a store: the response payload (one of the shared status buffers,
 * or data), why the connection must close, or, from a store over the network, a payload later
 * (which never fails: a failure is answered with a status): a PendingPayload. */
export type Payload = Buffer | { readonly reason: string } | PendingPayload;

/** Counts a later response payload and makes its answer (assembleEngine's). */
type Respond = (uid: number, operation: Operation, payload: Buffer, started: number) => Answer;

/** Where a PendingPayload goes once it is in. */
interface PayloadSink {
  payloadIn(payload: Buffer): void;
}

/** A payload a store hands over later by a call to deliver() (the Redis engine's: a promise and
 * its reactions per request cost more than the rest of the answer there). */
export class PendingPayload {
  #sink: PayloadSink | undefined;
  #payload: Buffer | undefined;

  /** The payload is in (the first call counts). */
  deliver(payload: Buffer): void {
    if (this.#payload !== undefined) return;
    this.#payload = payload;
    this.#sink?.payloadIn(payload);
  }

  /** Whether the payload is in (set before it is handed on, so a sink that throws leaves it in). */
  get delivered(): boolean {
    return this.#payload !== undefined;
  }

  sendTo(sink: PayloadSink): void {
    if (this.#payload !== undefined) sink.payloadIn(this.#payload);
    else this.#sink = sink;
  }
}

/** The answer to a request whose payload is pending: settled with the response once it is in. */
class PendingResponse extends PendingAnswer implements PayloadSink {
  readonly #uid: number;
  readonly #operation: Operation;
  readonly #started: number;
  readonly #respond: Respond;

  constructor(message: Message, started: number, respond: Respond) {
    super();
    // Not the message: its payload is a view of the connection's read buffer.
    this.#uid = message.uid;
    this.#operation = message.operation;
    this.#started = started;
    this.#respond = respond;
  }

  payloadIn(payload: Buffer): void {
    this.settle(this.#respond(this.#uid, this.#operation, payload, this.#started));
  }
}

/** What one kind of store brings to an engine; assembleEngine adds the rest. */
export interface EngineCore {
  /** The payload that answers one request. */
  payload(message: Message): Payload;
  /** A GET answered in one piece, if the core can: the whole response (frame and data in one
   * buffer), or undefined for a miss. Without it a GET goes through payload() like the rest. */
  hit?(message: Message): Buffer | undefined;
  /** A GET hit written into `output` with its frame, if the core can: WROTE, MISSED, or
   * NOT_IN_PLACE (then hit() or payload() answers it). */
  hitInto?(message: Message, output: OutputArea): number;
  /** Sessions held now, for the statistics line. */
  sessions(): number;
  close(): Promise<void>;
}

/** An engine around `core`: the response framing, the counters (an operation is a request
 * answered with a response), afterAnswer, the connection bookkeeping and serve. The in-memory
 * engine and the Redis one (./redis_engine) are both made by it. */
export function assembleEngine(core: EngineCore, options: Omit<CacheEngineOptions, 'store'>): CacheEngine {
  const clock = options.clock ?? defaultClock;
  const { afterAnswer } = options;
  let operations = 0;
  let connections = 0;
  let dropped = 0;
  let answers = 0;

  const counted = (operation: Operation, payload: Buffer, started: number): void => {
    operations++;
    afterAnswer?.(operation, resultOf(operation, payload), started);
  };
  /** The response to `message`: written straight into `output` when there is one with room (a
   * status under every HAVE, REMOVE, ADD and GET miss: no Buffer made per answer, nor copied
   * again into the pump's area), else framed into a Buffer of its own. */
  const respond = (message: Message, payload: Buffer, started: number, output: OutputArea | undefined): Answer => {
    counted(message.operation, payload, started);
    if (frameInto(output, message.uid, message.operation, payload)) return ANSWERED_IN_PLACE;
    return { kind: 'respond', bytes: encodeMessage({ isResponse: true, uid: message.uid, operation: message.operation }, payload) };
  };
  /** A later payload is framed by the connection (in place in its output area, when it can). */
  const respondLater: Respond = (uid, operation, payload, started) => {
    counted(operation, payload, started);
    return { kind: 'payload', uid, operation, payload };
  };

  /** Every connection's options, made once (a connection per request makes many). */
  const session = { idleMs: options.idleMs ?? 0 };
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
    answer(message, output) {
      const started = afterAnswer !== undefined && (answers++ & (ANSWER_TIMING_SAMPLE - 1)) === 0 ? performance.now() : -1;
      if (output !== undefined && core.hitInto !== undefined && message.operation === Operation.GET) {
        const done = core.hitInto(message, output);
        if (done === WROTE) {
          operations++;
          afterAnswer?.(Operation.GET, 'hit', started);
          return ANSWERED_IN_PLACE;
        }
        if (done === MISSED) return respond(message, NOTOK, started, output);
        // NOT_IN_PLACE: answered below as if no output were given.
      }
      if (core.hit !== undefined && message.operation === Operation.GET) {
        const response = core.hit(message);
        if (response === undefined) return respond(message, NOTOK, started, output);
        operations++;
        afterAnswer?.(Operation.GET, 'hit', started);
        return { kind: 'respond', bytes: response };
      }
      const payload = core.payload(message);
      if (Buffer.isBuffer(payload)) return respond(message, payload, started, output);
      if (payload instanceof PendingPayload) {
        const later = new PendingResponse(message, started, respondLater);
        payload.sendTo(later);
        return later;
      }
      afterAnswer?.(message.operation, 'closed', started);
      return { kind: 'close', reason: payload.reason };
    },
    serve(conn) {
      return servePumpedConnection(conn, engine, session) ?? serveCacheConnection(conn, engine, session);
    },
    servePumped(conn, finished) {
      servePumpedSocket(conn, engine, session, finished);
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
