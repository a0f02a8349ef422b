// The servers the cache bench measures, as a list of targets: each knows how to start itself on a
// unix socket or a loopback TCP port, pinned to the server CPU, with room for a given number of
// sessions, and says when it cannot (the C server stops at 60,000 sessions). A new row (another
// store, Redis behind our dc_server...) is one more CacheBenchTarget in the list main() builds.
// Every process is started through track() so an interrupted bench leaves none behind.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export type Transport = 'unix' | 'tcp';

/** Where the load generator connects: unix:PATH or tcp:127.0.0.1:PORT. */
export type LoadTarget = string;

export interface RunningServer {
  readonly name: string;
  /** The process whose RSS counts (the server itself, not a wrapper). */
  readonly pid: number;
  readonly target: LoadTarget;
  /** Processes whose CPU time a request costs (default: pid). */
  readonly cpuPids?: readonly number[];
  /** Processes whose resident memory holds the sessions (default: pid). */
  readonly rssPids?: readonly number[];
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly transport: Transport;
  /** A private directory for sockets. */
  readonly dir: string;
  readonly sessions: number;
  /** Session data size (the minimal responder answers GETs with this many bytes). */
  readonly size: number;
  /** CPU list for taskset. */
  readonly cpus: string;
}

export interface CacheBenchTarget {
  readonly name: string;
  /** Requests a filling client may pipeline (default 1: the C server is not trusted with more). */
  readonly fillDepth?: number;
  /** False for a server that keeps nothing (the responder): it is not filled or weighed. */
  readonly stores?: boolean;
  /** Why it cannot hold `sessions`, or undefined when it can. */
  cannot(sessions: number): string | undefined;
  start(options: StartOptions): Promise<RunningServer>;
}

const children = new Set<ChildProcess>();
const others = new Set<number>();
/** Remembers a child so exit stops it (by PID) even when the bench is interrupted. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
/** The same for a process started elsewhere (redis-server through test/support): `untrack` once stopped. */
export function trackPid(pid: number): () => void {
  others.add(pid);
  return () => others.delete(pid);
}
process.on('exit', () => {
  children.forEach((c) => c.kill('SIGKILL'));
  for (const pid of others) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A free loopback port (bound and released: the C server takes a port number, not 0). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once `target` accepts a connection (the process may take a while to bind). */
async function waitAccepting(child: ChildProcess, target: LoadTarget, output: () => string): Promise<void> {
  const until = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = target.startsWith('unix:') ? net.connect(target.slice(5)) : net.connect(Number(target.split(':')[2]), '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (child.exitCode !== null || Date.now() > until) throw new Error(`server did not start (${target}): ${output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts `argv` under taskset on `cpus` and waits until it accepts on `target`. */
export async function startPinned(name: string, cpus: string, argv: readonly string[], target: LoadTarget, env?: Readonly<Record<string, string>>): Promise<RunningServer> {
  const child = track(spawn('taskset', ['-c', cpus, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...(env === undefined ? {} : { env: { ...process.env, ...env } }) }));
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text = (text + d.toString()).slice(-4000)));
  child.stderr!.on('data', (d: Buffer) => (text = (text + d.toString()).slice(-4000)));
  await waitAccepting(child, target, () => text);
  return {
    name,
    pid: child.pid!,
    target,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** The address both the server's -listen and the load generator understand. */
export async function addressFor(o: StartOptions, name: string): Promise<{ listen: string; target: LoadTarget }> {
  if (o.transport === 'unix') {
    const sock = path.join(o.dir, `${name}.sock`);
    fs.rmSync(sock, { force: true });
    return { listen: `UNIX:${sock}`, target: `unix:${sock}` };
  }
  const port = await freePort();
  return { listen: `IP:127.0.0.1:${port}`, target: `tcp:127.0.0.1:${port}` };
}

export interface OursOptions {
  /** Row name (default 'ours'). */
  readonly name?: string;
  /** More dc_server options (-metrics ADDR, -redis URL...). */
  readonly extra?: readonly string[];
  /** False when the store is not this process's (-redis refuses -sessions). Default true. */
  readonly sized?: boolean;
  /** More environment (DISTKIT_CACHE_IO=stream: the Node stream path instead of the native pump). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Our dc_server (whatever store it defaults to, or the one `extra` picks). */
export function oursTarget(repo: string, options: OursOptions = {}): CacheBenchTarget {
  const name = options.name ?? 'ours';
  return {
    name,
    fillDepth: 32,
    cannot: () => undefined,
    async start(o) {
      const { listen, target } = await addressFor(o, name.replace(/\W+/g, '-'));
      const sessions = options.sized === false ? [] : ['-sessions', String(Math.max(512, o.sessions))];
      const argv = [process.execPath, path.join(repo, 'dist/src/cli/dc_server.js'), '-listen', listen, ...sessions, '-loglevel', 'notice', ...(options.extra ?? [])];
      return startPinned(name, o.cpus, argv, target, options.env);
    },
  };
}

/** DC_CACHE_MAX_SIZE in the C server. */
const C_MAX_SESSIONS = 60_000;

/** The real C dc_server 1.5.1 built by scripts/bench/c_distcache.sh. */
export function cTarget(prefix: string): CacheBenchTarget {
  return {
    name: 'C',
    cannot: (sessions) => (sessions > C_MAX_SESSIONS ? `C caps at ${C_MAX_SESSIONS}` : undefined),
    async start(o) {
      const { listen, target } = await addressFor(o, 'c');
      const argv = [path.join(prefix, 'bin/dc_server'), '-listen', listen, '-sessions', String(Math.min(C_MAX_SESSIONS, Math.max(512, o.sessions)))];
      return startPinned('C', o.cpus, argv, target);
    },
  };
}

/** The ceiling: our codec and node's sockets, no store (scripts/bench/minimal_responder.ts). */
export function responderTarget(repo: string): CacheBenchTarget {
  return {
    name: 'responder',
    stores: false,
    cannot: () => undefined,
    async start(o) {
      const { target } = await addressFor(o, 'responder');
      const where = target.startsWith('unix:') ? target.slice(5) : target.split(':')[2]!;
      const argv = [process.execPath, path.join(repo, 'dist/scripts/bench/minimal_responder.js'), where, String(o.size)];
      return startPinned('responder', o.cpus, argv, target);
    },
  };
}

/** CPU time `pid` has used so far (user + system), ms (clock ticks of 10 ms). */
export function cpuMsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The resident set of `pid`, bytes (taskset execs the server in place, so the pid is its own). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** app -> dc_client -> dc_server: `server` started behind a dc_client (ours or C) on a unix
 * socket; both on the server CPUs. RSS and pid are the proxy's. */
export function chainTarget(name: string, proxy: (listen: string, server: string) => readonly string[], server: CacheBenchTarget): CacheBenchTarget {
  return {
    name,
    cannot: (sessions) => server.cannot(sessions),
    async start(o) {
      const behind = await server.start({ ...o, transport: 'unix' });
      const { listen, target } = await addressFor({ ...o, transport: 'unix' }, `${name}-proxy`);
      try {
        const front = await startPinned(name, o.cpus, proxy(listen, `UNIX:${behind.target.slice(5)}`), target);
        return { ...front, cpuPids: [front.pid, behind.pid], stop: async () => {
          await front.stop();
          await behind.stop();
        } };
      } catch (error) {
        await behind.stop();
        throw error;
      }
    },
  };
}
