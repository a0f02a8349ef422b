// One distcache connection on the native socket pump (../activation/socket_pump): the same
// session as ./session (in-order answers, later answers queued, back-pressure, a malformed request
// dropping only its connection, the idle bound), with the bytes moved by C instead of a Node
// stream. The answers of one read are gathered in one buffer shared by every connection (each
// flush hands it to the kernel, which copies it, or to the pump's queue) and sent with one write.
// A connection that is not a plain accepted socket keeps ./session.
//
// DISTKIT_CACHE_IO=stream in the environment keeps every connection on ./session (a way back
// should the native path ever misbehave, and the bench's baseline).

import { describePeer, type Connection } from '../activation/connection';
import { adoptSocket, QUEUED, type PumpedSocket } from '../activation/socket_pump';
import type { Logger } from '../log/index';
import { MessageReader } from './wire/index';
import { armIdleBound } from './idle_bound';
import { AnswerQueue } from './answer_queue';
import { DROP_GRACE_MS, MAX_WAITING, type CacheSessionEngine, type CacheSessionOptions } from './session';
import { BATCH_BYTES } from './write_batch';

/** Whether connections go to the pump (read once: a process serves all its connections one way). */
const PUMP_ENABLED = process.env.DISTKIT_CACHE_IO !== 'stream';

/** The answers of one read, for whichever connection is answering now (always flushed before it
 * returns, so connections never see each other's bytes). */
const out = Buffer.allocUnsafeSlow(BATCH_BYTES);
let outLength = 0;

/** Serves `conn` on the pump until it ends; undefined when it cannot go there (see above). */
export function servePumpedConnection(conn: Connection, engine: CacheSessionEngine, options: CacheSessionOptions = {}): Promise<void> | undefined {
  if (!PUMP_ENABLED) return undefined;
  let session: PumpedSession | undefined;
  const done = new Promise<void>((resolve) => {
    session = new PumpedSession(conn, engine, options.idleMs ?? 0, resolve);
  });
  const socket = adoptSocket(conn.stream, session!, { noDelay: conn.peer.kind === 'tcp' });
  if (socket === undefined) return undefined;
  session!.start(socket);
  return done;
}

class PumpedSession {
  readonly #conn: Connection;
  readonly #engine: CacheSessionEngine;
  readonly #log: Logger;
  readonly #idleMs: number;
  readonly #resolve: () => void;
  readonly #reader = new MessageReader('request');
  #socket!: PumpedSocket;
  #requests = 0;
  /** The kernel did not take all we wrote: no parsing until the pump says it drained. */
  #blocked = false;
  /** Reading paused because MAX_WAITING answers wait for later ones. */
  #paused = false;
  #peerDone = false;
  #closing = false;
  #dropped = false;
  #settled = false;
  #grace: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  readonly #answers: AnswerQueue;

  constructor(conn: Connection, engine: CacheSessionEngine, idleMs: number, resolve: () => void) {
    this.#conn = conn;
    this.#engine = engine;
    this.#idleMs = idleMs;
    this.#resolve = resolve;
    this.#log = engine.log.child({ conn: conn.id });
    this.#answers = new AnswerQueue(engine, this.#log, () => this.#writeWaiting());
  }

  start(socket: PumpedSocket): void {
    this.#socket = socket;
    this.#engine.noteConnection('open');
    this.#log.debug('open', { peer: describePeer(this.#conn.peer) });
    this.#armIdle();
  }

  onData(bytes: Buffer): void {
    this.#armIdle();
    if (this.#closing) return; // dropped: discarded until the peer closes
    try {
      this.#reader.push(bytes);
    } catch (error) {
      return this.#drop((error as Error).message);
    }
    if (!this.#blocked) this.#answerBuffered();
    // What is left unparsed must not stay a view of the pump's arena, reused next turn.
    this.#reader.detach();
  }

  onDrain(): void {
    this.#armIdle();
    this.#blocked = false;
    this.#answerBuffered();
  }

  onEnd(): void {
    this.#peerDone = true;
    if (!this.#blocked) this.#answerBuffered();
  }

  onError(code: string): void {
    this.#log.info('error', { peer: describePeer(this.#conn.peer), error: code });
    this.#settle('error');
  }

  onGone(): void {
    this.#settle('closed');
  }

  onClosed(): void {
    this.#settle(this.#dropped ? 'dropped' : 'done');
  }

  #answerBuffered(): void {
    if (this.#closing || this.#settled) return;
    const drop = this.#writeAnswers();
    this.#flush();
    if (this.#settled) return;
    if (drop !== undefined) return this.#drop(drop.reason, drop.fields);
    if (!this.#blocked && this.#peerDone && this.#answers.length === 0) this.#endAfterLastAnswer();
  }

  #writeAnswers(): { reason: string; fields?: Record<string, number> } | undefined {
    for (;;) {
      if (this.#blocked) return undefined;
      if (this.#answers.length >= MAX_WAITING) {
        this.#pause(true);
        return undefined;
      }
      const next = this.#reader.next();
      if (next.kind === 'incomplete') return undefined;
      if (next.kind === 'corrupt') return { reason: next.reason, fields: { offset: next.offset } };
      const answer = this.#answers.answer(next.value);
      if (answer.kind === 'later' || this.#answers.length > 0) {
        this.#answers.push(answer);
        continue;
      }
      if (answer.kind === 'close') return { reason: answer.reason };
      this.#requests++;
      this.#add(answer.bytes);
      if (this.#settled) return undefined;
    }
  }

  #add(bytes: Buffer): void {
    if (outLength + bytes.length > out.length) {
      this.#flush();
      if (bytes.length > out.length) return this.#send(bytes, bytes.length);
    }
    bytes.copy(out, outLength);
    outLength += bytes.length;
  }

  #flush(): void {
    const length = outLength;
    if (length === 0) return;
    outLength = 0;
    this.#send(out, length);
  }

  #send(bytes: Buffer, length: number): void {
    if (this.#settled) return;
    const result = this.#socket.write(bytes, length);
    if (result === QUEUED) this.#blocked = true;
    else if (typeof result === 'string') this.onError(result);
  }

  #pause(paused: boolean): void {
    if (this.#paused === paused) return;
    this.#paused = paused;
    this.#socket.pause(paused);
  }

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
        this.#add(answer.bytes);
      }
    }
    this.#flush();
    if (this.#settled) return;
    if (drop !== undefined) return this.#drop(drop);
    if (this.#answers.length < MAX_WAITING) this.#pause(false);
    if (!this.#blocked) this.#answerBuffered();
  }

  #endAfterLastAnswer(): void {
    this.#closing = true;
    if (this.#reader.buffered > 0) this.#log.info('truncated', { bytes: this.#reader.buffered });
    if (this.#socket.end()) this.#settle('done');
  }

  #drop(reason: string, fields: Record<string, number> = {}): void {
    this.#closing = true;
    this.#dropped = true;
    this.#engine.noteConnection('dropped');
    this.#log.warning('drop', { peer: describePeer(this.#conn.peer), requests: this.#requests, reason, ...fields });
    this.#pause(false); // read and discard what else the peer sends, so its writes do not block
    if (this.#socket.end()) return this.#settle('dropped');
    this.#grace = setTimeout(() => {
      this.#socket.destroy();
      this.#settle('drop grace over');
    }, DROP_GRACE_MS);
    this.#grace.unref();
  }

  #armIdle(): void {
    if (this.#settled) return;
    this.#idle = armIdleBound(this.#idle, this.#idleMs, () => {
      this.#log.info('idle close', { peer: describePeer(this.#conn.peer), requests: this.#requests, idle_ms: this.#idleMs, buffered: this.#reader.buffered });
      this.#socket.destroy();
      this.#settle('idle');
    });
  }

  #settle(why: string): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#grace !== undefined) clearTimeout(this.#grace);
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    // The pump is done with the socket (both sides ended, or it failed, or it was cut): closing
    // the owner now sends the FIN without the shutdown and 'finish' round the activation layer's
    // end() would take, which a connection per request (mod_socache_dc) pays every time.
    this.#conn.stream.destroy();
    this.#engine.noteConnection('close');
    this.#log.debug('close', { requests: this.#requests, why });
    this.#resolve();
  }
}
