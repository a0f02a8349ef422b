// One distcache connection: read request frames, answer each message in order, write the
// responses. Everything the C server got wrong at this layer is handled here:
// - unlimited in-order pipelining with back-pressure: while the peer does not read its responses
//   (the socket's write buffer is above its high-water mark) we stop parsing and stop reading, so
//   a slow reader costs one socket buffer, not our memory (the C server dropped a connection that
//   pipelined behind an ~8 KB GET response);
// - a half-closed peer (shutdown(SHUT_WR) after its requests) gets every response, then FIN;
// - a malformed stream, a wrong protocol version (the C server abort()ed, so a port scanner or an
//   HTTP health check took the whole cache down) or an ADD under 8 bytes closes this connection
//   only, with one log line saying why. Nothing is ever sent back for a bad request;
// - answers that come later (a store over the network: { kind: 'later' }) keep their place: every
//   answer behind one waits in a queue until it is in, and at most MAX_WAITING wait before we stop
//   parsing (the same back-pressure as a peer that does not read);
// - an optional idle bound (ours; the original has none, and Apache and dc_client keep their
//   connections open between requests, so it is off unless asked for): a peer that neither sends
//   a byte nor takes a byte of its responses for idleMs is closed, so silent peers cannot hold
//   file descriptors forever.
//
// The bytes move through a transport (./cache_transport): a Node stream (./stream_transport) or the
// native socket pump (./pumped_session); this file is the protocol for both, written once.

import { describePeer, type Connection } from '../activation/connection';
import type { Logger } from '../log/index';
import { MessageReader } from './wire/message_reader'; // not ./wire/index: see ./engine
import { encodeMessage } from './wire/frame';
import { frameInto } from './output_area';
import { armIdleBound } from './idle_bound';
import { ANSWERED_IN_PLACE, AnswerQueue, type CacheSessionEngine, type PayloadAnswer } from './answer_queue';
import type { CacheTransport, TransportSink } from './cache_transport';
import { StreamTransport } from './stream_transport';

export type { Answer, CacheSessionEngine } from './answer_queue';

/** After a bad request: how long we keep discarding the peer's input while our answers leave and
 * we wait for it to close its side (closing earlier would reset it and lose them); then we reset. */
export const DROP_GRACE_MS = 5000;

/** Answers one connection waits for at most before it stops parsing requests. */
export const MAX_WAITING = 1024;

export interface CacheSessionOptions {
  /** Close a connection after this many ms without progress in either direction; 0 = never (default). */
  readonly idleMs?: number;
}

/** Why a connection is dropped, with the log line's extra fields. */
interface DropReason {
  readonly reason: string;
  readonly fields?: Record<string, number>;
}

/** Serves one connection on its Node stream until the peer is done (or is dropped); never rejects. */
export function serveCacheConnection(conn: Connection, engine: CacheSessionEngine, options: CacheSessionOptions = {}): Promise<void> {
  return serveCacheSession(conn, engine, new StreamTransport(conn), options);
}

/** Who a session serves, for its log lines. */
export type SessionPeer = Pick<Connection, 'id' | 'peer'>;

/** Serves one connection whose bytes `transport` moves; never rejects. */
export function serveCacheSession(conn: SessionPeer, engine: CacheSessionEngine, transport: CacheTransport, options: CacheSessionOptions = {}): Promise<void> {
  return new Promise<void>((resolve) => runCacheSession(conn, engine, transport, options, resolve));
}

/** The same, calling `finished` once the session is over instead of settling a promise. */
export function runCacheSession(conn: SessionPeer, engine: CacheSessionEngine, transport: CacheTransport, options: CacheSessionOptions, finished: () => void): void {
  new CacheSession(conn, engine, transport, options.idleMs ?? 0, finished).start();
}

/** One connection's state, and one method per step of serving it. */
class CacheSession implements TransportSink {
  readonly #conn: SessionPeer;
  readonly #transport: CacheTransport;
  readonly #engine: CacheSessionEngine;
  #log: Logger | undefined;
  readonly #idleMs: number;
  /** Says the session is over (settles serveCacheSession's promise, or runCacheSession's caller). */
  readonly #resolve: () => void;
  readonly #reader = new MessageReader('request');
  #requests = 0;
  /** The peer is not taking our responses: we stopped parsing (and reading) until it drains. */
  #blocked = false;
  /** The peer ended its side: no more requests will come. */
  #peerDone = false;
  #closing = false;
  /** Dropped for a bad request: we read and discard until the peer closes (or the grace ends). */
  #dropped = false;
  #settled = false;
  #grace: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  /** Answers not written yet because one before them (or they) came later, in request order. */
  readonly #answers: AnswerQueue;

  constructor(conn: SessionPeer, engine: CacheSessionEngine, transport: CacheTransport, idleMs: number, resolve: () => void) {
    this.#conn = conn;
    this.#transport = transport;
    this.#engine = engine;
    this.#idleMs = idleMs;
    this.#resolve = resolve;
    this.#answers = new AnswerQueue(engine, this);
  }

  /** This connection's logger (made when first used: most connections log nothing). */
  get log(): Logger {
    return (this.#log ??= this.#engine.log.child({ conn: this.#conn.id }));
  }

  /** The answer at the head of the queue may have come in (the AnswerQueue's call). */
  answersReady(): void {
    this.#writeWaiting();
  }

  start(): void {
    this.#engine.noteConnection('open');
    if (this.#engine.log.enabled('debug')) this.log.debug('open', { peer: describePeer(this.#conn.peer) });
    this.#armIdle();
    this.#transport.start(this);
  }

  onData(bytes: Buffer, start: number, end: number): void {
    this.#armIdle();
    if (this.#closing) return; // dropped: discarded until the peer closes
    try {
      this.#reader.push(bytes, start, end);
    } catch (error) {
      return this.#drop((error as Error).message);
    }
    if (!this.#blocked) this.#answerBuffered();
    // What is left unparsed must not stay a view of a buffer the transport reuses.
    if (this.#transport.lendsInput) this.#reader.detach();
  }

  onDrain(): void {
    this.#armIdle();
    if (!this.#blocked) return;
    this.#blocked = false;
    if (!this.#peerDone) this.#transport.resume();
    this.#answerBuffered();
  }

  onBlocked(): void {
    this.#blocked = true;
  }

  onEnd(): void {
    this.#peerDone = true;
    if (this.#dropped) {
      if (this.#transport.finished()) this.#settle('dropped');
      return;
    }
    if (!this.#blocked) this.#answerBuffered();
  }

  onError(code: string): void {
    this.log.info('error', { peer: describePeer(this.#conn.peer), error: code });
    this.#transport.destroy();
    this.#settle('error');
  }

  onClosed(): void {
    this.#settle(this.#dropped ? 'dropped' : 'done');
  }

  onGone(): void {
    this.#settle('closed');
  }

  /** Answers the buffered requests in order until the peer must read first; ends our side once
   * the peer is done and has every answer. */
  #answerBuffered(): void {
    if (this.#closing || this.#settled) return;
    const drop = this.#writeAnswers();
    this.#transport.flush();
    if (this.#settled) return;
    if (drop !== undefined) return this.#drop(drop.reason, drop.fields);
    if (!this.#blocked && this.#peerDone && this.#answers.length === 0) this.#endAfterLastAnswer();
  }

  /** Gathers one answer per complete request while the peer takes them; says why to drop the
   * connection when a request is bad. */
  #writeAnswers(): DropReason | undefined {
    const transport = this.#transport;
    for (;;) {
      if (this.#blocked || transport.full()) {
        this.#blocked = true;
        return undefined;
      }
      if (this.#answers.length >= MAX_WAITING) {
        transport.hold(true);
        return undefined;
      }
      const next = this.#reader.next();
      if (next.kind === 'incomplete') return undefined;
      if (next.kind === 'corrupt') return { reason: next.reason, fields: { offset: next.offset } };
      // Written in place only when it goes out next: nothing waits before it.
      const answer = this.#answers.answer(next.value, this.#answers.length === 0 ? transport.output : undefined);
      if (answer.kind === 'later' || this.#answers.length > 0) {
        this.#answers.push(answer);
        continue;
      }
      if (answer.kind === 'close') return { reason: answer.reason };
      this.#requests++;
      if (answer.kind === 'payload') this.#addPayload(answer);
      else if (answer !== ANSWERED_IN_PLACE) transport.add(answer.bytes);
      if (this.#settled) return undefined;
    }
  }

  /** Writes the answers at the head of the queue that are in, then goes on with the requests. */
  #writeWaiting(): void {
    if (this.#closing || this.#settled) return;
    let drop: string | undefined;
    for (let answer = this.#answers.shift(); answer !== undefined; answer = this.#answers.shift()) {
      if (answer.kind === 'close') {
        drop = answer.reason;
        break;
      }
      if (answer.kind === 'respond') {
        this.#requests++;
        this.#transport.add(answer.bytes);
      } else if (answer.kind === 'payload') {
        this.#requests++;
        this.#addPayload(answer);
      }
    }
    this.#transport.flush();
    if (this.#settled) return;
    if (drop !== undefined) return this.#drop(drop);
    if (this.#answers.length < MAX_WAITING) this.#transport.hold(false);
    if (!this.#blocked) this.#answerBuffered();
  }

  /** Frames a PayloadAnswer in place in the transport's output area when it fits in one frame
   * and there is room; else as bytes of its own. */
  #addPayload(answer: PayloadAnswer): void {
    const { payload } = answer;
    if (frameInto(this.#transport.output, answer.uid, answer.operation, payload)) return;
    this.#transport.add(encodeMessage({ isResponse: true, uid: answer.uid, operation: answer.operation }, payload));
  }

  #endAfterLastAnswer(): void {
    this.#closing = true;
    if (this.#reader.buffered > 0) this.log.info('truncated', { bytes: this.#reader.buffered });
    if (this.#transport.end()) this.#settle('done');
  }

  #drop(reason: string, fields: Record<string, number> = {}): void {
    this.#closing = true;
    this.#dropped = true;
    this.#engine.noteConnection('dropped');
    this.log.warning('drop', { peer: describePeer(this.#conn.peer), requests: this.#requests, reason, ...fields });
    this.#transport.discardInput();
    if (this.#transport.end()) return this.#settle('dropped');
    this.#grace = setTimeout(() => {
      this.#transport.destroy();
      this.#settle('drop grace over');
    }, DROP_GRACE_MS);
    this.#grace.unref();
  }

  /** Progress in either direction (bytes in, or the peer taking our queued responses) re-arms it. */
  #armIdle(): void {
    // Off (the default): no closure made per read for a bound that is never armed.
    if (this.#settled || this.#idleMs <= 0) return;
    this.#idle = armIdleBound(this.#idle, this.#idleMs, () => {
      this.log.info('idle close', { peer: describePeer(this.#conn.peer), requests: this.#requests, idle_ms: this.#idleMs, buffered: this.#reader.buffered });
      this.#transport.destroy();
      this.#settle('idle');
    });
  }

  #settle(why: string): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#grace !== undefined) clearTimeout(this.#grace);
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#transport.release();
    this.#engine.noteConnection('close');
    if (this.#engine.log.enabled('debug')) this.log.debug('close', { requests: this.#requests, why });
    this.#resolve();
  }
}
