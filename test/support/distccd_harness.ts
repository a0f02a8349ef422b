// Starts our distccd (node dist/src/cli/distccd.js) for system tests on a free loopback port,
// with a private masquerade directory, collects its log lines, and runs Debian's real distcc
// client against it. Everything is cleaned up by the test's t.after.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free_port';

export { freePort };

export const DISTCCD = path.resolve(__dirname, '../../src/cli/distccd.js');

/**
 * Started by root, distccd becomes distcc, distccd or nobody unless told otherwise, as C distccd
 * does; these tests keep their trees private (0700), so as root they say --user root. The drop
 * itself is tested in distccd_privileges.test.ts.
 */
export const KEEP_ROOT: readonly string[] = process.getuid?.() === 0 ? ['--user', 'root'] : [];

/** The compiler names Debian's update-distcc-symlinks would link to distcc. */
export const MASQUERADE_NAMES = ['gcc', 'cc', 'g++', 'c++', 'x86_64-linux-gnu-gcc', 'x86_64-linux-gnu-g++', 'true', 'false'];

export async function makeMasqueradeDir(dir: string, names: readonly string[] = MASQUERADE_NAMES): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  for (const name of names) await fs.symlink('/usr/bin/distcc', path.join(dir, name));
  return dir;
}

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A private tree for one daemon: `root`, its TMPDIR `root/tmp` and a masquerade dir `root/masq`. */
export async function jobTree(t: { after: (fn: () => Promise<void>) => void }, prefix: string): Promise<{ root: string; tmp: string; masq: string }> {
  const root = await tempDir(t, prefix);
  const tmp = path.join(root, 'tmp');
  await fs.mkdir(tmp);
  return { root, tmp, masq: await makeMasqueradeDir(path.join(root, 'masq')) };
}

export interface RunningDistccd {
  readonly port: number;
  readonly child: ChildProcess;
  /** Log lines so far. */
  readonly lines: string[];
  /** Resolves with the first log line matching `re` (waits up to `ms`). */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  /** Resolves once `n` log lines match `re` (the summary is logged just after the answer is sent). */
  waitForCount(re: RegExp, n: number, ms?: number): Promise<void>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Skip the default --allow 127.0.0.1. */
  readonly noAllow?: boolean;
  readonly compilerDir: string;
  /** A command that execs the daemon (e.g. ['prlimit', '--nofile=64', '--']): same pid. */
  readonly wrapper?: readonly string[];
  /** Listen address (default 127.0.0.1). */
  readonly listen?: string;
  /** false: leave out the --user root a root test run adds (KEEP_ROOT). */
  readonly keepRoot?: boolean;
}

export async function startDistccd(t: { after: (fn: () => Promise<unknown>) => void }, options: StartOptions): Promise<RunningDistccd> {
  const port = await freePort();
  const args = [
    DISTCCD, '--daemon', '--no-detach', '--listen', options.listen ?? '127.0.0.1', '--port', String(port), '--log-stderr', '--log-level', 'debug',
    '--compiler-dir', options.compilerDir, ...(options.noAllow === true ? [] : ['--allow', '127.0.0.1']), ...(options.keepRoot === false ? [] : KEEP_ROOT), ...(options.args ?? []),
  ];
  const [command, ...rest] = [...(options.wrapper ?? []), process.execPath, ...args];
  const child = spawn(command!, rest, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    partial += text;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = (re: RegExp, ms = 20_000): Promise<string> => {
    const found = lines.find((l) => re.test(l));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line ${re} within ${ms} ms; log:\n${lines.join('\n')}`)), ms);
      waiters.push({ re, resolve: (l) => { clearTimeout(timer); resolve(l); } });
      void exited.then(() => setTimeout(() => reject(new Error(`distccd exited before ${re}; log:\n${lines.join('\n')}`)), 50));
    });
  };
  const waitForCount = async (re: RegExp, n: number, ms = 20_000): Promise<void> => {
    const end = Date.now() + ms;
    while (lines.filter((l) => re.test(l)).length < n) {
      if (Date.now() > end) throw new Error(`fewer than ${n} log lines ${re} within ${ms} ms; log:\n${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  t.after(stop);
  await Promise.race([waitFor(/listening/), exited.then((code) => { throw new Error(`distccd exited ${code}:\n${lines.join('\n')}`); })]);
  return { port, child, lines, waitFor, waitForCount, stop, exited };
}

export interface ClientResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command (usually the real `distcc`) and collects its output. */
export function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<ClientResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The environment that makes the real client use only `hosts` and never fall back to local. */
export function clientEnv(home: string, hosts: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    DISTCC_HOSTS: hosts, DISTCC_FALLBACK: '0', DISTCC_BACKOFF_PERIOD: '0', DISTCC_SKIP_LOCAL_RETRY: '1',
    HOME: home, DISTCC_DIR: home, DISTCC_VERBOSE: '0', ...extra,
  };
}
