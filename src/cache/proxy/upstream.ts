// dc_client's single connection to the cache server. Every application request is sent here with
// a fresh upstream uid (the multiplexer's m_uid), and the response that comes back with that uid
// goes to the callback of the request that was given it. At most MAX_IN_FLIGHT requests wait on
// the server at once (MULTIPLEXER_MAX_ITEMS); later ones queue here in arrival order. When the
// connection dies, each request the server had is answered DISCONNECTED (0x02) and each queued
// one gets the "no server" answer; a new connection is tried every retry period (server.c's
// server_retry_util), the first one at start at once, the first after a loss one retry period
// after it (server_dead_util stamps last_fail): a server that was SIGKILLed still completes
// handshakes while the kernel tears its memory down, and a reconnection at once found it, took
// requests from a pool that prefers it and lost them too.
//
// Once connected, the socket moves to the native socket pump (../../activation/socket_pump), as
// the applications' sockets do: the server's answers come in the pump's one callback per turn with
// the applications' requests, the requests of a turn leave with its answers in one call into C,
// and no Node stream reads or writes per burst. A socket the pump cannot take stays on its stream,
// as every socket does with DISTKIT_CACHE_IO=stream.

import net from 'node:net';
import type { Logger } from '../../log/index';
import { adoptSocket, inPumpCallback, type PumpedSocket } from '../../activation/socket_pump';
import { cachePumpEnabled } from '../pumped_session';
import { connectOptionsOf, describeConnectTarget, type ConnectTarget } from '../address';
import { encodeMessage } from '../wire/frame';
import { WriteBatch } from '../write_batch';
import { MessageReader } from '../wire/message_reader';
import { OPERATION_NAMES, Status, type Operation } from '../wire/constants';

/** MULTIPLEXER_MAX_ITEMS: requests outstanding on the upstream connection at once. */
export const MAX_IN_FLIGHT = 512;

/** How a request ended: the server's payload, or one of the proxy's own answers. */
export type UpstreamAnswer =
  | { readonly kind: 'response'; readonly payload: Buffer }
  /** The connection died while the server had the request: answer DC_ERR_DISCONNECTED. */
  | { readonly kind: 'disconnected' }
  /** No server connection: the original answers with an empty payload. */
  | { readonly kind: 'unavailable' };

export type AnswerCallback = (answer: UpstreamAnswer) => void;

interface Pending {
  readonly operation: Operation;
  readonly payload: Buffer;
  readonly done: AnswerCallback;
  /** Set when the application went away: the answer is discarded. */
  cancelled: boolean;
}

export interface UpstreamOptions {
  readonly retryMs: number;
  readonly log: Logger;
  readonly maxInFlight?: number;
  /** Called whenever the connection state changes (tests, status line). */
  readonly onState?: (state: 'connected' | 'down') => void;
}

/** A request handed to send(); cancel() when its application connection closes. */
export interface UpstreamTicket {
  cancel(): void;
}

export class Upstream {
  readonly #target: ConnectTarget;
  readonly #options: UpstreamOptions;
  readonly #maxInFlight: number;
  readonly #log: Logger;
  #socket: net.Socket | undefined;
  /** Requests waiting for the end of this event-loop turn, on #socket. */
  #batch: WriteBatch | undefined;
  /** #socket moved to the pump once connected (see the top); requests are appended there. */
  #pumped: PumpedSocket | undefined;
  #flushScheduled = false;
  #connected = false;
  #reader = new MessageReader('response');
  readonly #inFlight = new Map<number, Pending>();
  readonly #queue: Pending[] = [];
  #nextUid = 1;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastAttempt = 0;
  #generation = 0;
  /** Failed connection attempts in a row. */
  #failures = 0;

  constructor(target: ConnectTarget, options: UpstreamOptions) {
    this.#target = target;
    this.#options = options;
    this.#maxInFlight = options.maxInFlight ?? MAX_IN_FLIGHT;
    this.#log = options.log;
  }

  /** True while a connection exists or is being made (requests are accepted). */
  get active(): boolean {
    return this.#socket !== undefined;
  }

  get connected(): boolean {
    return this.#connected;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Starts the first connection attempt now. */
  start(): void {
    this.#connect();
  }

  /** Closes the connection and stops retrying; outstanding requests are answered DISCONNECTED. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#socket !== undefined) this.#fail('stopped');
  }

  /**
   * Forwards a request; `done` is called exactly once (never synchronously). Without a
   * connection the answer is 'unavailable' at once, as the original answers locally.
   */
  send(operation: Operation, payload: Buffer, done: AnswerCallback): UpstreamTicket {
    const p: Pending = { operation, payload, done, cancelled: false };
    const ticket = { cancel: () => void (p.cancelled = true) };
    if (this.#socket === undefined) {
      queueMicrotask(() => this.#answer(p, { kind: 'unavailable' }));
      return ticket;
    }
    if (this.#inFlight.size < this.#maxInFlight) this.#write(p);
    else this.#queue.push(p);
    return ticket;
  }

  #answer(p: Pending, answer: UpstreamAnswer): void {
    if (p.cancelled) return;
    p.cancelled = true;
    p.done(answer);
  }

  #allocateUid(): number {
    // 32-bit wrap, never reusing a uid still in flight.
    for (;;) {
      const uid = this.#nextUid;
      this.#nextUid = (this.#nextUid + 1) >>> 0 || 1;
      if (!this.#inFlight.has(uid)) return uid;
    }
  }

  #write(p: Pending): void {
    const uid = this.#allocateUid();
    this.#inFlight.set(uid, p);
    const request = encodeMessage({ isResponse: false, uid, operation: p.operation }, p.payload);
    const pumped = this.#pumped;
    if (pumped !== undefined) {
      pumped.append(request);
      // Within the pump's callback, its end sends them; else at the end of the turn, as below.
      if (inPumpCallback()) return;
    } else {
      this.#batch!.add(request);
    }
    // Requests from every application served in this turn of the event loop leave in one write.
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    // A connection lost meanwhile took its batch with it (its requests were answered 'disconnected').
    if (this.#pumped !== undefined) this.#pumped.commit();
    else this.#batch?.flush();
  };

  #connect(): void {
    if (this.#stopped || this.#socket !== undefined) return;
    this.#lastAttempt = Date.now();
    const generation = ++this.#generation;
    const socket = net.connect(connectOptionsOf(this.#target));
    this.#socket = socket;
    this.#batch = new WriteBatch(socket);
    this.#reader = new MessageReader('response');
    socket.setNoDelay(true);
    socket.on('connect', () => {
      if (generation !== this.#generation) return;
      this.#connected = true;
      this.#failures = 0;
      this.#log.notice('upstream connected', { server: describeConnectTarget(this.#target) });
      // After 'connect' returns: Node starts the socket reading right after emitting it, and a
      // read of its own would take bytes from the pump.
      process.nextTick(() => generation === this.#generation && this.#adopt(socket, generation));
      this.#options.onState?.('connected');
    });
    socket.on('data', (chunk: Buffer) => {
      if (generation === this.#generation) this.#onData(chunk);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (generation === this.#generation) this.#fail(error.code ?? error.message);
    });
    // The server's FIN ends it at once: it answers nothing more, and until 'close' (after our own
    // end) requests would still be sent to it and lost, not sent to the next server.
    socket.on('end', () => {
      if (generation === this.#generation) this.#fail('closed by server');
    });
    socket.on('close', () => {
      if (generation === this.#generation) this.#fail('closed by server');
    });
  }

  /** Moves the connected socket to the pump (see the top); it stays on its stream when the pump
   * cannot take it (requests written before the connection completed still in its queue). */
  #adopt(socket: net.Socket, generation: number): void {
    if (!cachePumpEnabled()) return; // DISTKIT_CACHE_IO=stream: every connection on Node's streams
    this.#batch!.flush();
    const mine = (): boolean => generation === this.#generation;
    const pumped = adoptSocket(
      socket,
      {
        onData: (arena, start, end) => {
          if (!mine()) return;
          this.#onData(arena, start, end);
          // The arena is reused next turn: a partial answer must not stay a view of it.
          this.#reader.detach();
        },
        onEnd: () => mine() && this.#fail('closed by server'),
        onError: (code) => mine() && this.#fail(code),
        onClosed: () => mine() && this.#fail('closed by server'),
        onGone: () => mine() && this.#fail('closed by server'),
        // Unbounded as on the stream: at most maxInFlight requests are ever outstanding.
        onDrain: () => undefined,
      },
      { noDelay: true },
    );
    if (pumped !== undefined) this.#pumped = pumped;
  }

  #onData(chunk: Buffer, start = 0, end = chunk.length): void {
    this.#reader.push(chunk, start, end);
    for (;;) {
      const r = this.#reader.next();
      if (r.kind === 'incomplete') return;
      if (r.kind === 'corrupt') return this.#fail(`corrupt response: ${r.reason}`);
      const m = r.value;
      const p = this.#inFlight.get(m.uid);
      if (p === undefined) return this.#fail(`response with unknown uid 0x${m.uid.toString(16)}`);
      if (p.operation !== m.operation) {
        return this.#fail(`response uid 0x${m.uid.toString(16)} is ${OPERATION_NAMES[m.operation]}, request was ${OPERATION_NAMES[p.operation]}`);
      }
      this.#inFlight.delete(m.uid);
      // Copy: the payload may be a view into the reader's buffer, reused at the next push.
      this.#answer(p, { kind: 'response', payload: Buffer.from(m.payload) });
      this.#drainQueue();
    }
  }

  #drainQueue(): void {
    while (this.#socket !== undefined && this.#inFlight.size < this.#maxInFlight) {
      const next = this.#queue.shift();
      if (next === undefined) return;
      // An application that left takes its queued requests with it: they never reach the server.
      if (!next.cancelled) this.#write(next);
    }
  }

  #fail(why: string): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#generation++;
    this.#socket = undefined;
    this.#batch = undefined;
    this.#pumped?.destroy();
    this.#pumped = undefined;
    const wasConnected = this.#connected;
    this.#connected = false;
    socket.destroy();
    const lost = [...this.#inFlight.values()];
    const queued = this.#queue.splice(0);
    this.#inFlight.clear();
    // The first failed attempt after start or after a loss is a warning; the retries that follow
    // every -retry ms while the server stays away are info, so the log does not fill up.
    const firstFailure = wasConnected || this.#failures++ === 0;
    if (wasConnected) this.#failures = 0;
    this.#log[firstFailure ? 'warning' : 'info'](wasConnected ? 'upstream lost' : 'upstream connect failed', {
      server: describeConnectTarget(this.#target),
      why,
      outstanding: lost.length,
      queued: queued.length,
      retry_ms: this.#options.retryMs,
    });
    for (const p of lost) this.#answer(p, { kind: 'disconnected' });
    for (const p of queued) this.#answer(p, { kind: 'unavailable' });
    if (wasConnected) this.#options.onState?.('down');
    if (wasConnected) this.#lastAttempt = Date.now();
    if (!this.#stopped) {
      const wait = Math.max(0, this.#lastAttempt + this.#options.retryMs - Date.now());
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#connect();
      }, wait);
      this.#timer.unref?.();
    }
  }
}

/** The one-byte payload a proxy answers when its upstream died with the request outstanding. */
export const DISCONNECTED_PAYLOAD: Buffer = Buffer.from([Status.DISCONNECTED]);
