// dc_server's statistics line, with the original's rule for when to print it (sserver's main
// loop): at most once a second, and then only when the number of stored sessions changed since
// the last line; or at once whenever the operation count crossed a multiple of -progress.
//
//   Info, total operations = %7lu  (+ %5lu), total sessions = %5u  (%c%3u)
//
// Pure: the caller supplies the time and the counters, and decides how often to look (the
// original looked at every wake-up of its select loop: after network activity or every 500 ms).

/** Upper bound of -progress in the original (MAX_PROGRESS). */
export const MAX_PROGRESS = 1_000_000;
/** The noise limit: at most one line per this many ms unless -progress trips. */
export const PROGRESS_QUIET_MS = 1000;

export function formatProgressLine(ops: number, opsBefore: number, sessions: number, sessionsBefore: number): string {
  const sign = sessions > sessionsBefore ? '+' : sessions === sessionsBefore ? '=' : '-';
  const delta = Math.abs(sessions - sessionsBefore);
  return (
    `Info, total operations = ${String(ops).padStart(7)}  (+ ${String(ops - opsBefore).padStart(5)}), ` +
    `total sessions = ${String(sessions).padStart(5)}  (${sign}${String(delta).padStart(3)})`
  );
}

export class ProgressReporter {
  readonly #every: number;
  #lastMs: number;
  #ops = 0;
  #sessions = 0;

  /** `every` is -progress (0 = only the once-a-second session-count line). */
  constructor(every: number, startMs: number) {
    if (!Number.isInteger(every) || every < 0 || every > MAX_PROGRESS) {
      throw new RangeError(`progress interval ${every} is not 0..${MAX_PROGRESS}`);
    }
    this.#every = every;
    this.#lastMs = startMs;
  }

  #tripped(ops: number): boolean {
    return this.#every > 0 && Math.floor(ops / this.#every) !== Math.floor(this.#ops / this.#every);
  }

  /**
   * Looks at the counters; returns the line to print, if any. `sessions` is only called when the
   * answer may depend on it (counting live sessions can mean purging expired ones).
   */
  check(nowMs: number, ops: number, sessions: () => number): string | undefined {
    const tripped = this.#tripped(ops);
    if (nowMs - this.#lastMs < PROGRESS_QUIET_MS && !tripped) return undefined;
    const stored = sessions();
    if (stored === this.#sessions && !tripped) return undefined;
    const line = formatProgressLine(ops, this.#ops, stored, this.#sessions);
    this.#lastMs = nowMs;
    this.#ops = ops;
    this.#sessions = stored;
    return line;
  }
}
