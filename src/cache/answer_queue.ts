// The answers of one connection in request order (./session's, whichever transport moves its
// bytes: a Node stream or the native socket pump): an answer that comes
// later (a store over the network) holds every answer behind it in a queue until it is in, and a
// bug answering one request closes that connection only, logged.

import type { Logger } from '../log/index';
import type { Message } from './wire/index';

/** What one request gets: response bytes, or the connection closed without a response, or one
 * of these later (the promise must not reject, nor resolve to another 'later'). */
export type Answer =
  | { readonly kind: 'respond'; readonly bytes: Buffer }
  | { readonly kind: 'close'; readonly reason: string }
  | { readonly kind: 'later'; readonly promise: Promise<Answer> };

/** What a connection needs of the engine (./engine implements it; this file never imports it). */
export interface CacheSessionEngine {
  readonly log: Logger;
  /** Answers one request message. */
  answer(message: Message): Answer;
  /** Bookkeeping: a connection opened, closed, or was dropped for a bad request. */
  noteConnection(change: 'open' | 'close' | 'dropped'): void;
}

/** An answer in the queue: set once it is in. */
interface Waiting {
  answer: Answer | undefined;
}

export class AnswerQueue {
  readonly #engine: CacheSessionEngine;
  readonly #log: Logger;
  /** Called when the answer at the head of the queue may have come in. */
  readonly #onReady: () => void;
  readonly #waiting: Waiting[] = [];

  constructor(engine: CacheSessionEngine, log: Logger, onReady: () => void) {
    this.#engine = engine;
    this.#log = log;
    this.#onReady = onReady;
  }

  /** Answers waiting (behind a later one, or later themselves). */
  get length(): number {
    return this.#waiting.length;
  }

  /** The engine's answer to one request; a thrown error closes only this connection. */
  answer(message: Message): Answer {
    try {
      return this.#engine.answer(message);
    } catch (error) {
      return this.#failed(error);
    }
  }

  /** Queues an answer behind the ones waiting; onReady runs once a later one is in. */
  push(answer: Answer): void {
    const slot: Waiting = { answer: answer.kind === 'later' ? undefined : answer };
    this.#waiting.push(slot);
    if (answer.kind !== 'later') return;
    // One reaction, not a chain: each promise hop is a microtask and an allocation per request.
    answer.promise.then(
      (late) => this.#settle(slot, late.kind === 'later' ? this.#failed(new Error('a later answer resolved to a later answer')) : late),
      (error: unknown) => this.#settle(slot, this.#failed(error)),
    );
  }

  #settle(slot: Waiting, answer: Answer): void {
    slot.answer = answer;
    this.#onReady();
  }

  /** The answer at the head if it is in (taken off the queue), else undefined. */
  shift(): Answer | undefined {
    if (this.#waiting[0]?.answer === undefined) return undefined;
    return this.#waiting.shift()!.answer;
  }

  #failed(error: unknown): Answer {
    // A bug answering one request must cost that connection, not every client's cache.
    this.#log.err('answer failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    return { kind: 'close', reason: 'internal error' };
  }
}
