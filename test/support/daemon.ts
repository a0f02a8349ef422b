// The one spawn-and-wait harness of the tests: starts a program, keeps what it writes, and waits
// for what it says (its "listening on=" line, any log line) or for its exit, woken by each chunk
// of output instead of sleeping. The program is ended by its PID, never by name. distccd_harness,
// echo_harness, cache_harness and fuzz/server_program are thin layers over it.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { PORT_TAKEN, saysPortTaken } from './free_port';
import type { AfterHook } from './temp_dir';

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface DaemonOptions extends SpawnOptions {
  /** Ended (by PID) when the test ends: SIGTERM, or this signal; SIGKILL if it outlives 10 s. */
  readonly endWith?: NodeJS.Signals;
}

/** How long stop() lets a program drain before SIGKILL. */
const KILL_AFTER_MS = 10_000;
/** What waits for when the caller does not say. */
const WAIT_MS = 20_000;

export class Daemon {
  readonly child: ChildProcess;
  /** Resolves when the process has exited (a child it forked may still hold its pipes). */
  readonly exited: Promise<Exit>;
  /** Resolves once its pipes are closed too: all its output is in. */
  readonly drained: Promise<Exit>;
  /** Complete stderr lines so far (a live array: log lines). */
  readonly lines: string[] = [];
  #stdout = '';
  #stderr = '';
  #output = '';
  #partial = '';
  #exit: Exit | undefined;
  #drained = false;
  #waiters = new Set<() => void>();

  constructor(command: string, args: readonly string[], options: SpawnOptions = {}) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      this.#stdout += text;
      this.#output += text;
      this.#wake();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      this.#stderr += text;
      this.#output += text;
      const parts = (this.#partial + text).split('\n');
      this.#partial = parts.pop()!;
      this.lines.push(...parts);
      this.#wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        this.#wake();
        resolve(this.#exit);
      }),
    );
    this.drained = new Promise((resolve) =>
      this.child.once('close', (code, signal) => {
        this.#drained = true;
        this.#wake();
        resolve({ code, signal });
      }),
    );
  }

  /** Spawns `command` and makes sure it is ended (by PID) when the test ends. */
  static start(t: AfterHook, command: string, args: readonly string[], options: DaemonOptions = {}): Daemon {
    const { endWith, ...spawnOptions } = options;
    const daemon = new Daemon(command, args, spawnOptions);
    t.after(() => daemon.stop(endWith));
    return daemon;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Not yet exited; its output may still be arriving until `drained`. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** How it ended, once it has. */
  get exit(): Exit | undefined {
    return this.#exit;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** stdout and stderr interleaved as they arrived. */
  get output(): string {
    return this.#output;
  }

  /**
   * Resolves with the first value `probe` returns, checked now and after each chunk of output and
   * at the exit; rejects after `ms`, or once the program is gone and its output all in if
   * `untilExit` says the value can only come from it. A probe of outside state (a file, /proc) is also checked every 200 ms.
   */
  async until<T>(what: string, probe: () => T | undefined, options: { ms?: number; untilExit?: boolean } = {}): Promise<T> {
    const ms = options.ms ?? WAIT_MS;
    const deadline = Date.now() + ms;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      if (options.untilExit === true && this.#drained) throw new Error(`${this.#name()} exited (${JSON.stringify(this.#exit)}) before ${what}; output:\n${this.#output}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} from ${this.#name()} within ${ms} ms; output:\n${this.#output}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 200));
        this.#waiters.add(wake);
      });
    }
  }

  /** The first match of `pattern` in the output (stdout and stderr). */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray> {
    return this.until(String(pattern), () => pattern.exec(this.#output) ?? undefined, { ms, untilExit: true });
  }

  /**
   * For a program told a fixed port (see onFreePort): the first match of `pattern`, its sign of
   * readiness, or PORT_TAKEN when it ended saying the address was in use.
   */
  async waitForBind(pattern: RegExp, ms?: number): Promise<RegExpMatchArray | typeof PORT_TAKEN> {
    try {
      return await this.waitFor(pattern, ms);
    } catch (error) {
      if (this.#drained && saysPortTaken(this.#output)) return PORT_TAKEN;
      throw error;
    }
  }

  /** The first complete stderr line matching `re`. */
  waitForLine(re: RegExp, ms?: number): Promise<string> {
    return this.until(`a line ${re}`, () => this.lines.find((l) => re.test(l)), { ms, untilExit: true });
  }

  /** Resolves once `n` complete stderr lines match `re`. */
  async waitForLines(re: RegExp, n: number, ms?: number): Promise<void> {
    await this.until(`${n} lines ${re}`, () => (this.lines.filter((l) => re.test(l)).length >= n ? true : undefined), { ms, untilExit: true });
  }

  /** The addresses of the "listening on=a,b" line the activation layer logs once it is ready. */
  async listening(ms?: number): Promise<string[]> {
    const m = await this.until('the listening line', () => /listening on=(\S+)/.exec(this.#stderr) ?? undefined, { ms, untilExit: true });
    return m[1]!.split(',');
  }

  /** Sends `signal` (SIGTERM) by PID, SIGKILL after killAfterMs; resolves with how it ended. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = KILL_AFTER_MS): Promise<Exit> {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => this.running && this.child.kill('SIGKILL'), killAfterMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  #name(): string {
    return `pid ${this.child.pid}`;
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}
