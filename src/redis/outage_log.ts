// One log line when Redis goes away and one when it comes back, however many requests fail in
// between: a dead Redis under load would otherwise write a line per request (thousands a second)
// and bury everything else in the log. Callers report each failure and each success; this keeps
// the state and counts the outages. In a cluster one master can be down while the others answer,
// so successes and failures interleave: "back" waits for a success after QUIET_MS without a
// failure, and a failover costs one pair of lines, not one per request.

import type { Logger } from '../log/index';

/** How long after the last failure a success counts as "back" (ms). */
export const QUIET_MS = 1000;

export class OutageLog {
  readonly #log: Logger;
  readonly #what: string;
  #down = false;
  #outages = 0;
  #lastFailure = 0;
  #lastSuccess = 0;
  /** Looks again once the quiet time after the last failure is over. */
  #recheck: NodeJS.Timeout | undefined;
  readonly #clock: () => number;

  /** `what` names the Redis in the lines ("Redis down: ... redis=unix:///run/redis.sock"). */
  constructor(log: Logger, what: string, clock: () => number = () => performance.now()) {
    this.#log = log;
    this.#what = what;
    this.#clock = clock;
  }

  get down(): boolean {
    return this.#down;
  }

  /** Outages seen since start. */
  get outages(): number {
    return this.#outages;
  }

  /** A request failed or the connection broke: logs "Redis down" if it was up. */
  failed(reason: string): void {
    this.#lastFailure = this.#clock();
    if (this.#down) return;
    this.#down = true;
    this.#outages++;
    this.#log.warning(`Redis down: ${reason}`, { redis: this.#what });
  }

  /** A request succeeded or the connection is ready: logs "Redis back" if it was down. */
  succeeded(): void {
    this.#lastSuccess = this.#clock();
    this.#checkBack();
  }

  #checkBack(): void {
    if (!this.#down || this.#lastSuccess <= this.#lastFailure) return;
    const wait = QUIET_MS - (this.#clock() - this.#lastFailure);
    if (wait > 0) {
      this.#recheck ??= setTimeout(() => {
        this.#recheck = undefined;
        this.#checkBack();
      }, wait).unref();
      return;
    }
    this.#down = false;
    this.#log.notice('Redis back', { redis: this.#what });
  }
}
