// The answers of one connection in request order (./session's, whichever transport moves its
// bytes: a Node stream or the native socket pump): an answer that comes
// later (a store over the network) holds every answer behind it in a queue until it is in, and a
// bug answering one request closes that connection only, logged.
//
// A later answer is a PendingAnswer (settled by a call: the Redis engine's, where a promise and
// its reactions per request cost more than the rest of the answer) or any promise; the queue
// waits for both the same way.

import type { Logger } from '../log/index';
import type { Message, Operation } from './wire/index';
import type { OutputArea } from './output_area';

/** What one request gets: response bytes, or the connection closed without a response, or one
 * of these later (the promise must not reject, nor resolve to another 'later'). */
export type Answer =
  | { readonly kind: 'respond'; readonly bytes: Buffer }
  | { readonly kind: 'close'; readonly reason: string }
  | PayloadAnswer
  | LaterAnswer;

/** A response the connection frames itself (a later answer's, the Redis engine's): written in
 * place in its OutputArea when there is one and room, so a reply costs no frame Buffer of its
 * own and one copy less; framed into bytes of its own otherwise. */
export interface PayloadAnswer {
  readonly kind: 'payload';
  readonly uid: number;
  readonly operation: Operation;
  readonly payload: Buffer;
}

/** The answer whose bytes the engine wrote into the OutputArea it was given: counted like any
 * response, with nothing left to add. */
export const ANSWERED_IN_PLACE: Answer = Object.freeze({ kind: 'respond', bytes: Buffer.alloc(0) });

export interface LaterAnswer {
  readonly kind: 'later';
  readonly promise: Promise<Answer>;
}

/** A later answer settled by a call: no promise (nor its reactions, microtasks and `then`
 * lookups) unless someone asks for one; the queue waits for it without. */
export class PendingAnswer implements LaterAnswer {
  readonly kind = 'later';
  /** The answer once settled (the first settle counts). */
  answer: Answer | undefined;
  /** Told once it is settled (the queue waiting for it). */
  onSettled: (() => void) | undefined;
  #promise: Promise<Answer> | undefined;
  #resolve: ((answer: Answer) => void) | undefined;

  get promise(): Promise<Answer> {
    return (this.#promise ??= this.answer !== undefined ? Promise.resolve(this.answer) : new Promise((resolve) => (this.#resolve = resolve)));
  }

  settle(answer: Answer): void {
    if (this.answer !== undefined) return;
    this.answer = answer;
    this.#resolve?.(answer);
    this.onSettled?.();
  }
}

/** What a connection needs of the engine (./engine implements it; this file never imports it). */
export interface CacheSessionEngine {
  readonly log: Logger;
  /** Answers one request message; with `output`, it may write the response there itself (see
   * ANSWERED_IN_PLACE). Only given when the answer goes out next, behind nothing. */
  answer(message: Message, output?: OutputArea): Answer;
  /** Bookkeeping: a connection opened, closed, or was dropped for a bad request. */
  noteConnection(change: 'open' | 'close' | 'dropped'): void;
}

/** An answer in the queue: one that is in, or one that is not yet (settled then). */
type Waiting = Exclude<Answer, LaterAnswer> | PendingAnswer;

/** The connection a queue answers for: its logger, and what to call when the answer at the head
 * of the queue may have come in. */
export interface AnswerOwner {
  readonly log: Logger;
  answersReady(): void;
}

export class AnswerQueue {
  readonly #engine: CacheSessionEngine;
  readonly #owner: AnswerOwner;
  readonly #waiting: Waiting[] = [];
  /** Tells the owner (made once, when a first answer waits for a later one). */
  #onReady: (() => void) | undefined;

  constructor(engine: CacheSessionEngine, owner: AnswerOwner) {
    this.#engine = engine;
    this.#owner = owner;
  }

  /** Answers waiting (behind a later one, or later themselves). */
  get length(): number {
    return this.#waiting.length;
  }

  /** The engine's answer to one request; a thrown error closes only this connection. */
  answer(message: Message, output?: OutputArea): Answer {
    let answer: Answer;
    try {
      answer = this.#engine.answer(message, output);
    } catch (error) {
      return this.#failed(error);
    }
    // Settled already (a store that failed at once): as if answered at once.
    return answer instanceof PendingAnswer && answer.answer !== undefined ? this.#settled(answer.answer) : answer;
  }

  /** Queues an answer behind the ones waiting; onReady runs once a later one is in. */
  push(answer: Answer): void {
    if (answer.kind !== 'later') return void this.#waiting.push(answer);
    let pending: PendingAnswer;
    if (answer instanceof PendingAnswer) {
      pending = answer;
    } else {
      pending = new PendingAnswer();
      answer.promise.then(
        (late) => pending.settle(late),
        (error: unknown) => pending.settle(this.#failed(error)),
      );
    }
    if (pending.answer === undefined) pending.onSettled = this.#onReady ??= () => this.#owner.answersReady();
    this.#waiting.push(pending);
  }

  /** The answer at the head if it is in (taken off the queue), else undefined. */
  shift(): Answer | undefined {
    const head = this.#waiting[0];
    if (head === undefined) return undefined;
    if (head.kind !== 'later') return this.#waiting.shift();
    const late = head.answer;
    if (late === undefined) return undefined;
    this.#waiting.shift();
    return this.#settled(late);
  }

  #settled(late: Answer): Answer {
    return late.kind === 'later' ? this.#failed(new Error('a later answer resolved to a later answer')) : late;
  }

  #failed(error: unknown): Answer {
    // A bug answering one request must cost that connection, not every client's cache.
    this.#owner.log.err('answer failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    return { kind: 'close', reason: 'internal error' };
  }
}
