// Shared by the activation system tests: where the echo test program is, spawning programs that
// are always ended by pid (test/support/daemon.ts), and a line-oriented client.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { Daemon } from '../support/daemon';
import { waitUntil } from '../support/wait_until';

export { waitUntil };
import type { PORT_TAKEN } from '../support/free_port';

export const ECHO = path.resolve(__dirname, '../fixtures/echo_server.js');
export const NODE = process.execPath;

export interface Program {
  readonly child: ChildProcess;
  /** Everything written to stdout/stderr so far (when piped). */
  output(): string;
  /** Resolves with the first match of `pattern` in the output, rejects after `ms` or once it has ended. */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** As waitFor, or PORT_TAKEN when it ended saying its fixed port was in use (see onFreePort). */
  waitForBind(pattern: RegExp, ms?: number): Promise<RegExpMatchArray | typeof PORT_TAKEN>;
  /** Resolves with the exit code (signal name if killed). */
  readonly exited: Promise<number | string>;
}

/** Spawns `command` and makes sure it is ended (SIGKILL, by pid) when the test ends. */
export function start(t: TestContext, command: string, args: readonly string[], options: SpawnOptions = {}): Program {
  const daemon = Daemon.start(t, command, args, { ...options, endWith: 'SIGKILL' });
  return {
    child: daemon.child,
    output: () => daemon.output,
    waitFor: (pattern, ms = 10_000) => daemon.waitFor(pattern, ms),
    waitForBind: (pattern, ms = 10_000) => daemon.waitForBind(pattern, ms),
    exited: daemon.exited.then(({ code, signal }) => code ?? signal ?? -1),
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

/**
 * Who listens on 127.0.0.1:port (/proc/net/tcp, state 0A): 'mine' when the socket is one of
 * `pid`'s fds (inetd has bound its line), 'other' when another process got the port first (a
 * test running in parallel: start again on fresh ports), undefined while nobody listens.
 */
export function listener(port: number, pid: number): 'mine' | 'other' | undefined {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const row = fs.readFileSync('/proc/net/tcp', 'latin1').split('\n').map((r) => r.trim().split(/\s+/))
    .find((cols) => cols[1] === `0100007F:${hex}` && cols[3] === '0A');
  if (row === undefined) return undefined;
  const socket = `socket:[${row[9]}]`;
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return 'other'; // the process is gone: whoever listens there, it is not its socket
  }
  return fds.some((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === socket;
    } catch {
      return false;
    }
  }) ? 'mine' : 'other';
}

/** Waits until `pid` listens on every port: true, or false as soon as another process holds one. */
export async function listensOn(pid: number, ports: readonly number[], what: () => string): Promise<boolean> {
  return waitUntil(() => {
    const owners = ports.map((port) => listener(port, pid));
    if (owners.includes('other')) return false;
    return owners.every((o) => o === 'mine') ? true : undefined;
  }, 10_000, what);
}
