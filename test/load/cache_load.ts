// Load figures for the cache server (a separate process: dc_server, or the engine stand-in):
// - idle connections: an active client's request latency (p50/p99 of sequential GET/ADD round
//   trips) with no other connection, then with `idle` open idle connections, in the same run;
// - eviction churn: `churn` ADDs pipelined into a full cache (-sessions 10000, 1000-byte data)
//   while the server's resident memory is sampled after warm-up.
// Loopback only; every loop is bounded in count and time. Used by `npm run load` (10,000 idle,
// 10^6 ADDs) and, with small counts and no timing assertion, by the npm test suite.

import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import posix from 'posix';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/index';
import { ENGINE_SERVER, haveServerProgram, startServerProgram, type ServerProgram } from '../fuzz/server_program';

export interface LatencyFigures {
  readonly requests: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

export interface IdleLoadResult {
  readonly server: string;
  readonly idle: number;
  readonly idleOpenAtEnd: number;
  readonly before: LatencyFigures;
  readonly withIdle: LatencyFigures;
  /** Idle-free again once the idle connections are closed. */
  readonly after: LatencyFigures;
  readonly rssBeforeBytes: number;
  readonly rssWithIdleBytes: number;
}

export interface ChurnResult {
  readonly server: string;
  readonly adds: number;
  readonly capacity: number;
  readonly sessionsAtEnd: number;
  /** Server VmRSS after warm-up, sampled every `adds / 20`. */
  readonly rssSamplesBytes: readonly number[];
  readonly seconds: number;
}

/** Starts dc_server when it is built, else the engine stand-in, on 127.0.0.1 (port 0: any). */
export async function startLoadServer(sessions: number, options: { port?: number; wrapper?: readonly string[] } = {}): Promise<{ program: ServerProgram; name: string }> {
  const port = options.port ?? 0;
  const wrapper = options.wrapper === undefined ? {} : { wrapper: options.wrapper };
  if (haveServerProgram()) {
    return { program: await startServerProgram(['-sessions', String(sessions)], { listen: `IP:127.0.0.1:${port}`, ...wrapper }), name: 'dc_server' };
  }
  return { program: await startServerProgram([String(sessions), String(port)], { script: ENGINE_SERVER, ...wrapper }), name: 'engine (runService)' };
}

/** Raises this process's soft RLIMIT_NOFILE to `want` (or the hard limit); returns the new soft limit. */
export function raiseNoFile(want: number): number {
  const { soft, hard } = posix.getrlimit('nofile');
  const target = hard === null ? want : Math.min(want, hard);
  if (soft !== null && soft < target) posix.setrlimit('nofile', { soft: target });
  return posix.getrlimit('nofile').soft ?? target;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Round trips not measured first: they warm the JIT (ours and the server's). */
const WARM_UP = 10_000;

/** `requests` sequential round trips (9 GETs of a 100-byte session to 1 ADD), microseconds. */
export async function measureLatency(client: CacheClient, requests: number, tag: string): Promise<LatencyFigures> {
  const value = Buffer.alloc(100, 0x61);
  // The longest timeout: the ADDs below (shorter) are always evicted before it.
  await client.add(`hot-${tag}`, value, 604_800_000);
  const samples: number[] = [];
  for (let i = 0; i < requests + WARM_UP; i++) {
    const t0 = process.hrtime.bigint();
    if (i % 10 === 9) {
      const status = await client.add(`k-${tag}-${i}`, value, 60_000);
      if (status !== Status.OK) throw new Error(`ADD answered ${status}`);
    } else {
      const got = await client.get(`hot-${tag}`);
      if (got === null || got.length !== 100) throw new Error('GET of the hot session missed');
    }
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    if (i >= WARM_UP) samples.push(us);
  }
  samples.sort((a, b) => a - b);
  return { requests, p50Us: percentile(samples, 50), p99Us: percentile(samples, 99), maxUs: samples[samples.length - 1]! };
}

/** Opens `n` connections (batches of 500) and keeps them idle. */
export async function openIdle(target: { host: string; port: number }, n: number): Promise<{ sockets: net.Socket[]; closed: () => number }> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  for (let i = 0; i < n; i += 500) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(500, n - i) }, () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: target.host, port: target.port }, () => resolve(s));
          s.once('error', reject);
        }),
      ),
    );
    for (const s of batch) {
      s.on('error', () => {});
      s.on('close', () => closed++);
      sockets.push(s);
    }
  }
  return { sockets, closed: () => closed };
}

/** Opens `n` idle connections from a separate process (idle_holder_main). */
async function holdIdle(target: { host: string; port: number }, n: number): Promise<{ release: () => Promise<number> }> {
  const child = spawn(process.execPath, [path.join(__dirname, 'idle_holder_main.js'), target.host, String(target.port), String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    for (const w of waiters.splice(0)) w();
    resolve();
  }));
  const line = async (re: RegExp): Promise<number> => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const m = re.exec(out);
      if (m) return Number(m[1]);
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`idle holder: no ${re} (exit ${child.exitCode}) output: ${out}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
  const open = await line(/open (\d+)/);
  if (open !== n) throw new Error(`idle holder opened ${open} of ${n}`);
  return {
    async release() {
      child.stdin!.end();
      const closed = await line(/closed (\d+)/);
      await exited;
      return n - closed;
    },
  };
}

export async function runIdleLoad(options: { idle: number; requests: number }): Promise<IdleLoadResult> {
  const { program, name } = await startLoadServer(512);
  try {
    const client = await CacheClient.connect(program.target);
    try {
      const before = await measureLatency(client, options.requests, 'before');
      const rssBefore = program.rssBytes();
      const idle = await holdIdle(program.target, options.idle);
      // Let the server accept and start serving every one of them.
      await new Promise((resolve) => setTimeout(resolve, 500 + options.idle / 10));
      const withIdle = await measureLatency(client, options.requests, 'idle');
      const rssWithIdle = program.rssBytes();
      const open = await idle.release();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const after = await measureLatency(client, options.requests, 'after');
      if (!program.alive()) throw new Error(`the server died:\n${program.lines.join('\n')}`);
      return { server: name, idle: options.idle, idleOpenAtEnd: open, before, withIdle, after, rssBeforeBytes: rssBefore, rssWithIdleBytes: rssWithIdle };
    } finally {
      client.destroy();
    }
  } finally {
    await program.stop();
  }
}

export async function runChurn(options: { adds: number; capacity: number; dataBytes: number; timeLimitMs: number }): Promise<ChurnResult> {
  const { program, name } = await startLoadServer(options.capacity);
  const started = Date.now();
  try {
    const client = await CacheClient.connect(program.target);
    try {
      const data = Buffer.alloc(options.dataBytes, 0x42);
      const samples: number[] = [];
      const warmUp = Math.max(options.capacity * 5, Math.floor(options.adds / 5));
      const every = Math.max(1, Math.floor(options.adds / 20));
      const window = 256;
      let done = 0;
      while (done < options.adds) {
        if (Date.now() - started > options.timeLimitMs) throw new Error(`churn stopped by its time bound after ${done} ADDs`);
        const n = Math.min(window, options.adds - done);
        const batch: Array<Promise<Status>> = [];
        for (let k = 0; k < n; k++) {
          const id = Buffer.alloc(32);
          id.writeUInt32BE(done + k, 0);
          batch.push(client.add(id, data, 600_000));
        }
        for (const status of await Promise.all(batch)) if (status !== Status.OK) throw new Error(`ADD answered ${status}`);
        done += n;
        if (done >= warmUp && Math.floor((done - n) / every) !== Math.floor(done / every)) samples.push(program.rssBytes());
      }
      samples.push(program.rssBytes());
      let sessionsAtEnd = 0;
      for (let i = options.adds - options.capacity; i < options.adds; i++) {
        const id = Buffer.alloc(32);
        id.writeUInt32BE(i, 0);
        if (await client.have(id)) sessionsAtEnd++;
      }
      return { server: name, adds: done, capacity: options.capacity, sessionsAtEnd, rssSamplesBytes: samples, seconds: (Date.now() - started) / 1000 };
    } finally {
      client.destroy();
    }
  } finally {
    await program.stop();
  }
}
