// --jobs N: at most N compilers run at once; further jobs wait their turn in arrival order. A
// waiting job is never refused (distccd's REJ_OVERLOAD never happens here) and never lost; one
// whose client gives up while waiting just leaves the queue.

export class JobSlots {
  readonly #limit: number;
  #busy = 0;
  readonly #queue: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`--jobs must be a whole number from 1 up, got ${limit}`);
    this.#limit = limit;
  }

  get busy(): number {
    return this.#busy;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Resolves with a release function once a slot is free; rejects if `signal` aborts first.
   * `signal` may be a function that makes it: only a job that has to queue asks for it.
   */
  acquire(signalOf?: AbortSignal | (() => AbortSignal)): Promise<() => void> {
    const grant = (): (() => void) => {
      this.#busy++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.#busy--;
        this.#queue.shift()?.();
      };
    };
    if (this.#busy < this.#limit) return Promise.resolve(grant());
    const signal = typeof signalOf === 'function' ? signalOf() : signalOf;
    return new Promise((resolve, reject) => {
      const turn = (): void => {
        signal?.removeEventListener('abort', leave);
        resolve(grant());
      };
      const leave = (): void => {
        const i = this.#queue.indexOf(turn);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(new Error('client left while waiting for a job slot'));
      };
      if (signal?.aborted === true) {
        reject(new Error('client left while waiting for a job slot'));
        return;
      }
      signal?.addEventListener('abort', leave, { once: true });
      this.#queue.push(turn);
    });
  }
}
