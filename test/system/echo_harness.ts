// Shared by the activation system tests: where the echo test program is, free ports, temp dirs,
// spawning programs that are always ended by pid, and a line-oriented client.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
export { freePort } from '../support/free_port';

export const ECHO = path.resolve(__dirname, '../fixtures/echo_server.js');
export const NODE = process.execPath;

export function tempDir(t: TestContext, prefix = 'distkit-act-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Program {
  readonly child: ChildProcess;
  /** Everything written to stdout/stderr so far (when piped). */
  output(): string;
  /** Resolves with the first match of `pattern` in the output, rejects after `ms`. */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (signal name if killed). */
  readonly exited: Promise<number | string>;
}

/** Spawns `command` and makes sure it is ended (by pid) when the test ends. */
export function start(t: TestContext, command: string, args: readonly string[], options: SpawnOptions = {}): Program {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let text = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (text += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (text += s));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    output: () => text,
    waitFor: (pattern, ms = 10_000) => waitUntil(() => pattern.exec(text) ?? undefined, ms, () => `no ${pattern} in output:\n${text}`),
    exited,
  };
}

/**
 * A zombie process: a python parent forks a child that exits at once and never waits for it
 * (a shell would: dash reaps a finished background job before its exec under load). The parent
 * is killed (and the zombie reaped by init) when the test ends.
 */
export async function makeZombie(t: TestContext): Promise<number> {
  const script = 'import os, sys, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)\n';
  const parent = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => parent.kill('SIGKILL'));
  const zombie = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (b: Buffer) => resolve(b.toString()))));
  await waitUntil(() => (/\) Z /.test(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8')) ? true : undefined), 5000, () => `${zombie} is no zombie`);
  return zombie;
}

/** Polls `probe` every 20 ms until it returns a value, failing after `ms`. */
export async function waitUntil<T>(probe: () => T | undefined, ms: number, what: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A client that reads whole lines. */
export class LineClient {
  readonly socket: net.Socket;
  #buffer = '';
  #ended = false;
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (s: string) => {
      this.#buffer += s;
      this.#wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('error', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  static connect(target: net.NetConnectOpts): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(target);
      socket.once('connect', () => resolve(new LineClient(socket)));
      socket.once('error', reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The next line (without newline), or undefined at EOF. */
  async readLine(ms = 10_000): Promise<string | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const newline = this.#buffer.indexOf('\n');
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        return line;
      }
      if (this.#ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${ms} ms (have "${this.#buffer}")`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Lines already received and not yet read (does not wait). */
  get pending(): string {
    return this.#buffer;
  }

  send(text: string): void {
    this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends `line`, expects it back; returns the greeting seen first. */
export async function greetAndEcho(target: net.NetConnectOpts, line = 'ping'): Promise<string> {
  const client = await LineClient.connect(target);
  try {
    const hello = await client.readLine();
    client.send(`${line}\n`);
    const back = await client.readLine();
    if (back !== line) throw new Error(`echo: sent "${line}", got "${back}"`);
    client.socket.end();
    const eof = await client.readLine();
    if (eof !== undefined) throw new Error(`expected EOF after end, got "${eof}"`);
    return hello ?? '';
  } finally {
    client.close();
  }
}

/** A file's text, or '' while it does not exist yet (log files a program has still to write). */
export function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** True when something listens on 127.0.0.1:port (/proc/net/tcp, state 0A): inetd has bound its line. */
export function listening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return fs.readFileSync('/proc/net/tcp', 'latin1').split('\n').some((row) => {
    const cols = row.trim().split(/\s+/);
    return cols[1] === `0100007F:${hex}` && cols[3] === '0A';
  });
}
