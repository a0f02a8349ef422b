// Helpers for the system tests of the cache programs: start the real compiled dc_server /
// dc_client / dc_snoop (node dist/src/cli/<program>.js, never through npm), learn the address they
// bound from their "listening on=" line, talk raw bytes to them, and stop them by PID.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const CLI_DIR = path.join(__dirname, '..', '..', 'src', 'cli');

export type CacheProgram = 'dc_server' | 'dc_client' | 'dc_snoop';

export class Program {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: Array<() => void> = [];

  constructor(program: CacheProgram, args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, [path.join(CLI_DIR, `${program}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      this.#wake();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      this.#wake();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      this.#wake();
      resolve({ code, signal });
    }));
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until `test` holds (checked on every output chunk), or fails after `ms`. */
  async waitUntil(what: string, test: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!test()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; stderr:\n${this.stderr}\nstdout:\n${this.stdout}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The addresses from the "listening on=a,b" start-up line. */
  async listening(ms = 10_000): Promise<string[]> {
    await this.waitUntil('the listening line', () => /listening on=\S+/.test(this.stderr) || !this.running, ms);
    const m = /listening on=(\S+)/.exec(this.stderr);
    if (m === null) throw new Error(`program exited before listening; stderr:\n${this.stderr}`);
    return m[1]!.split(',');
  }

  /** Stops it (SIGTERM by PID, SIGKILL after 5 s) and returns how it ended. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.running && this.child.kill('SIGKILL'), 5000);
      const r = await this.exited;
      clearTimeout(timer);
      return r;
    }
    return this.exited;
  }
}

/** Runs a program to completion (option errors, -h) and returns its exit and output. */
export async function runToExit(program: CacheProgram, args: readonly string[], ms = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new Program(program, args);
  const timer = setTimeout(() => p.running && p.child.kill('SIGKILL'), ms);
  const { code } = await p.exited;
  clearTimeout(timer);
  // Let the pipes drain after exit.
  await new Promise((r) => setImmediate(r));
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/** net.connect options for an address as the listening line prints it ("127.0.0.1:5", "unix:/p"). */
export function dialOf(printed: string): net.NetConnectOpts {
  if (printed.startsWith('unix:')) return { path: printed.slice(5) };
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(printed)!;
  return { host: m[1]!, port: Number(m[2]) };
}

/** libnal form of a printed TCP address ("IP:127.0.0.1:5") or unix one ("UNIX:/p"). */
export function libnalOf(printed: string): string {
  if (printed.startsWith('unix:')) return `UNIX:${printed.slice(5)}`;
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(printed)!;
  return m[1]!.includes(':') ? `IP:[${m[1]}]:${m[2]}` : `IP:${m[1]}:${m[2]}`;
}

/** A raw client connection that collects everything it receives. */
export class RawClient {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  closed = false;
  readonly ready: Promise<void>;
  #waiters: Array<() => void> = [];

  constructor(options: net.NetConnectOpts) {
    this.socket = net.connect({ ...options, allowHalfOpen: true } as net.NetConnectOpts);
    this.socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.#wake();
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    // EOF from the far end counts as closed: it has nothing more to say.
    this.socket.on('end', () => {
      this.closed = true;
      this.#wake();
    });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  async #until(test: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!test()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** Waits for at least `n` bytes in total, or for the close; returns what arrived. */
  async read(n: number, ms = 5000): Promise<Buffer> {
    await this.#until(() => this.received.length >= n || this.closed, ms);
    return this.received;
  }

  /** Takes the first `n` received bytes off the front (waiting for them). */
  async take(n: number, ms = 5000): Promise<Buffer> {
    await this.read(n, ms);
    if (this.received.length < n) throw new Error(`expected ${n} bytes, got ${this.received.length} (closed=${this.closed})`);
    const out = this.received.subarray(0, n);
    this.received = this.received.subarray(n);
    return Buffer.from(out);
  }

  async waitClosed(ms = 5000): Promise<boolean> {
    return this.#until(() => this.closed, ms);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A fresh private directory under os.tmpdir(), removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
