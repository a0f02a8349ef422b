// Starts our distccd (node dist/src/cli/distccd.js) for system tests on a fresh loopback port,
// with a private masquerade directory, collects its log lines, and runs Debian's real distcc
// client against it. Everything is cleaned up by the test's t.after.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Daemon } from './daemon';
import { onFreePort, freePort, PORT_TAKEN } from './free_port';
import { tempDir, type AfterHook } from './temp_dir';

export { tempDir };

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

/** A private tree for one daemon: `root`, its TMPDIR `root/tmp` and a masquerade dir `root/masq`. */
export async function jobTree(t: AfterHook, prefix: string): Promise<{ root: string; tmp: string; masq: string }> {
  const root = tempDir(t, prefix);
  const tmp = path.join(root, 'tmp');
  await fs.mkdir(tmp);
  return { root, tmp, masq: await makeMasqueradeDir(path.join(root, 'masq')) };
}

export interface RunningDistccd {
  readonly port: number;
  /** The --stats port, when started with `stats`. */
  readonly statsPort: number;
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
  /** Serve the counters page too (--stats on a fresh --stats-port). */
  readonly stats?: boolean;
}

/**
 * Our distccd on port 0 (and --stats-port 0): the "listening on=" line names the ports the kernel
 * chose, the service's first and the stats page's last, so nothing is probed and nothing races.
 */
export async function startDistccd(t: AfterHook, options: StartOptions): Promise<RunningDistccd> {
  const args = [
    DISTCCD, '--daemon', '--no-detach', '--listen', options.listen ?? '127.0.0.1', '--port', '0', '--log-stderr', '--log-level', 'debug',
    '--compiler-dir', options.compilerDir, ...(options.noAllow === true ? [] : ['--allow', '127.0.0.1']), ...(options.keepRoot === false ? [] : KEEP_ROOT),
    ...(options.stats === true ? ['--stats', '--stats-port', '0'] : []),
    // The object cache is off unless the test asks for one: a shared /var/cache/distccd would
    // answer one test's jobs with another's objects (and a slot test would never run its compiler).
    ...((options.args ?? []).some((a) => a.startsWith('--cache') || a === '--no-cache') ? [] : ['--no-cache']), ...(options.args ?? []),
  ];
  const [command, ...rest] = [...(options.wrapper ?? []), process.execPath, ...args];
  // Its own runtime directory (where the sandbox check is remembered): as root the default is the
  // host's /run/distccd, which a test must not leave behind.
  const env = { ...process.env, RUNTIME_DIRECTORY: tempDir(t, 'distkit-run-'), ...options.env };
  const daemon = Daemon.start(t, command!, rest, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let addresses: string[];
  try {
    addresses = await daemon.listening();
  } catch (error) {
    if (daemon.exit === undefined) throw error;
    await daemon.drained;
    throw new Error(`distccd exited ${daemon.exit.code}:\n${daemon.lines.join('\n')}`);
  }
  const portOf = (address: string): number => Number(/:(\d+)$/.exec(address)?.[1]);
  return {
    port: portOf(addresses[0]!),
    statsPort: options.stats === true ? portOf(addresses[addresses.length - 1]!) : 0,
    child: daemon.child,
    lines: daemon.lines,
    waitFor: (re, ms) => daemon.waitForLine(re, ms),
    waitForCount: (re, n, ms) => daemon.waitForLines(re, n, ms),
    stop: async () => (await daemon.stop()).code,
    exited: daemon.exited.then((e) => e.code),
  };
}

/** Debian's C distccd 3.4 as a daemon on a fresh loopback port (stats: and its counters page); waitFor: a line of its log (stderr). */
export async function startCDistccd(t: AfterHook, options: { args?: readonly string[]; stats?: boolean } = {}): Promise<{ port: number; statsPort: number; waitFor(re: RegExp, ms?: number): Promise<string> }> {
  return onFreePort(async (port) => {
    const statsPort = options.stats === true ? await freePort() : 0;
    const daemon = Daemon.start(t, '/usr/bin/distccd', [
      '--daemon', '--no-detach', '--allow', '127.0.0.1', '--listen', '127.0.0.1', '--port', String(port), '--log-stderr', '--log-level', 'info',
      ...(options.stats === true ? ['--stats', '--stats-port', String(statsPort)] : []), ...(options.args ?? []),
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    // It logs "listening on" per socket and, last, that its stats server has started.
    const ready = await daemon.waitForBind(options.stats === true ? /HTTP server started on port/ : new RegExp(`listening on 127\\.0\\.0\\.1:${port}\\b`));
    return ready === PORT_TAKEN ? PORT_TAKEN : { port, statsPort, waitFor: (re: RegExp, ms?: number) => daemon.waitForLine(re, ms) };
  });
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

/** The --stats page of a distccd (ours or C's) on 127.0.0.1:`port`, as an HTTP/1.0 client reads it. */
export function fetchStatsPage(port: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('error', reject);
    s.once('close', () => (chunks.length > 0 ? resolve(Buffer.concat(chunks).toString('latin1')) : reject(new Error('empty reply'))));
  });
}

/** Runs our distccd to its exit: for the starts that fail on purpose (give them --port 0). */
export function runDistccd(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ClientResult> {
  return run(process.execPath, [DISTCCD, ...args], { cwd: options.cwd ?? process.cwd(), env: options.env });
}

/** The environment that makes the real client use only `hosts` and never fall back to local. */
export function clientEnv(home: string, hosts: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    DISTCC_HOSTS: hosts, DISTCC_FALLBACK: '0', DISTCC_BACKOFF_PERIOD: '0', DISTCC_SKIP_LOCAL_RETRY: '1',
    HOME: home, DISTCC_DIR: home, DISTCC_VERBOSE: '0', ...extra,
  };
}
