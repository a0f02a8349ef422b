// Helpers for the system tests of the cache programs: start the real compiled dc_server /
// dc_client / dc_snoop (node dist/src/cli/<program>.js, never through npm) as a Daemon
// (test/support/daemon.ts), learn the address they bound from their "listening on=" line, talk
// raw bytes to them, and stop them by PID.

import net from 'node:net';
import path from 'node:path';
import assert from 'node:assert/strict';
import { Daemon } from '../support/daemon';
import type { GoldenVector } from '../cache/golden_vectors';

const CLI_DIR = path.join(__dirname, '..', '..', 'src', 'cli');

export type CacheProgram = 'dc_server' | 'dc_client' | 'dc_snoop';

export class Program extends Daemon {
  constructor(program: CacheProgram, args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    super(process.execPath, [path.join(CLI_DIR, `${program}.js`), ...args], { env });
  }

  /** Waits until `test` holds (checked on every output chunk), or fails after `ms`. */
  async waitUntil(what: string, test: () => boolean, ms = 10_000): Promise<void> {
    await this.until(what, () => (test() ? true : undefined), { ms });
  }

  /** Stops it (SIGTERM by PID, SIGKILL after 5 s) and returns how it ended. */
  override stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return super.stop('SIGTERM', 5000);
  }
}

/** Runs a program to completion (option errors, -h) and returns its exit and output. */
export async function runToExit(program: CacheProgram, args: readonly string[], ms = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new Program(program, args);
  const timer = setTimeout(() => p.running && p.child.kill('SIGKILL'), ms);
  const { code } = await p.exited;
  clearTimeout(timer);
  await p.drained;
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

/** Sends a golden vector's requests one by one and asserts each answer (or the close) byte for byte, and nothing extra. */
export async function replayVector(vector: GoldenVector, dial: ReturnType<typeof dialOf>): Promise<void> {
  const conn = new RawClient(dial);
  try {
    await conn.ready;
    for (const step of vector.steps) {
      conn.socket.write(step.request);
      if (step.closedByServer) {
        assert.equal(await conn.waitClosed(), true, `${vector.name} / ${step.step}: connection closed`);
        assert.equal(conn.received.length, 0, `${vector.name} / ${step.step}: nothing sent back`);
      } else {
        const got = await conn.take(step.response.length);
        assert.equal(got.toString('hex'), step.response.toString('hex'), `${vector.name} / ${step.step}`);
      }
    }
    // Nothing extra, ever: the C client library desynchronises on unsolicited bytes.
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(conn.received.length, 0, `${vector.name}: no extra bytes`);
  } finally {
    conn.destroy();
  }
}
