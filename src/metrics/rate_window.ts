// Rates for the status page (jobs per minute, operations per second) without touching the hot
// path: a timer reads a running total once a second and keeps the last minute of readings, and
// the rate is the difference between the newest and the oldest reading in the window.

const SAMPLE_MS = 1000;
const KEEP = 61;

export class RateWindow {
  readonly #read: () => number;
  readonly #now: () => number;
  readonly #samples: Array<{ at: number; total: number }> = [];
  readonly #timer: NodeJS.Timeout;

  constructor(read: () => number, options: { readonly now?: () => number } = {}) {
    this.#read = read;
    this.#now = options.now ?? Date.now;
    this.sample();
    this.#timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.#timer.unref();
  }

  /** Takes one reading (the timer's job; tests call it with their own clock). */
  sample(): void {
    this.#samples.push({ at: this.#now(), total: this.#read() });
    if (this.#samples.length > KEEP) this.#samples.shift();
  }

  /** Events per second over the last `seconds` (at most a minute), counting up to now. */
  perSecond(seconds: number): number {
    const now = this.#now();
    const total = this.#read();
    const since = now - seconds * 1000;
    const oldest = this.#samples.find((s) => s.at >= since) ?? this.#samples[this.#samples.length - 1];
    if (oldest === undefined || now <= oldest.at) return 0;
    // A process younger than the window counted nothing before its first reading: spread what
    // it counted over the whole window rather than over its first second.
    const span = this.#samples[0]!.at >= since ? seconds * 1000 : now - oldest.at;
    return ((total - oldest.total) * 1000) / span;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
