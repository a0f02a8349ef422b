// The service manager's side channel (sd_notify through the `sd-notify` package): READY=1 once
// listening, STATUS= a one-line summary, WATCHDOG=1 at half of WATCHDOG_USEC when the watchdog is
// meant for our pid, STOPPING=1 on shutdown. Without NOTIFY_SOCKET every call is a no-op and the
// native module is not even loaded (inetd start-up stays lean).

import type * as SdNotify from 'sd-notify';

export class Notifier {
  readonly #sd: typeof SdNotify | undefined;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.#sd = env.NOTIFY_SOCKET ? (require('sd-notify') as typeof SdNotify) : undefined;
  }

  get enabled(): boolean {
    return this.#sd !== undefined;
  }

  /** READY=1 then STATUS=<status>; starts the watchdog pings when systemd asked for them. */
  ready(status?: string): void {
    if (this.#sd === undefined) return;
    this.#sd.ready();
    if (status !== undefined) this.status(status);
    const intervalMs = this.#sd.watchdogInterval();
    if (intervalMs > 0 && this.#watchdog === undefined) {
      const sd = this.#sd;
      this.#watchdog = setInterval(() => sd.watchdog(), Math.max(1, Math.floor(intervalMs / 2)));
      this.#watchdog.unref();
    }
  }

  status(text: string): void {
    // STATUS= is one line: a newline would start another assignment.
    this.#sd?.sendStatus(text.replace(/[\r\n]+/g, ' '));
  }

  stopping(): void {
    if (this.#sd === undefined) return;
    this.close();
    this.#sd.stopping(process.pid);
  }

  close(): void {
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }
}
