// `npm run bench` for the session cache: ops/s of our dc_server for ADD/GET/HAVE/REMOVE with 1, 4
// and 16 persistent clients (one request at a time each, as Apache's mod_socache_dc does) over a
// unix socket and TCP, with the cache pre-filled to 512 / 50,000 / 1,000,000 sessions of 150 B and
// 4 KB (1,000,000 x 4 KB would need 4 GB: that cell is skipped and says so); connect-per-operation
// GETs; RSS per stored session; and every cell also against a minimal responder of ours (parses
// frames, answers without a store) as a ratio: ours/responder close to 1 means the store and the
// session logic cost little beside the codec and the sockets. The server is pinned to CPU 0 and the
// load generator (a child process) to CPU 1 with taskset.
// Loopback and private unix sockets only; every process stopped by PID; temp dir removed.
// Not part of `npm test`. Usage: node dist/scripts/bench/cache_bench.js [--quick] [--ms 1000]
// [--metrics-cost]: only the 1-client unix GET and ADD rows, dc_server without and with -metrics,
// alternated, 7 rounds: what counting costs the hot path.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CacheClient, type CacheTarget } from '../../src/cache/client';

const REPO = path.resolve(__dirname, '../../..');
const DC_SERVER = path.join(REPO, 'dist/src/cli/dc_server.js');
const RESPONDER = path.join(REPO, 'dist/scripts/bench/minimal_responder.js');
const SELF = __filename;

type Op = 'ADD' | 'GET' | 'HAVE' | 'REMOVE';
// Lookups first, ADD last: fresh ADDs into a full cache evict the pre-filled sessions.
const OPS: readonly Op[] = ['GET', 'HAVE', 'REMOVE', 'ADD'];
const ID_BYTES = 32; // an SSL session id
const TIMEOUT_MS = 3_600_000;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

function idOf(n: number): Buffer {
  const id = Buffer.alloc(ID_BYTES, 0x69);
  id.writeUInt32BE(n >>> 0, 0);
  id.writeUInt32BE(Math.floor(n / 2 ** 32), 4);
  return id;
}

// ---------------------------------------------------------------- load generator (CPU 1)

interface WorkerArgs {
  readonly target: CacheTarget;
  readonly op: Op | 'FILL' | 'CONNECT_GET';
  readonly clients: number;
  readonly ms: number;
  readonly ids: number;
  readonly size: number;
  /** First id for ADD (fresh ids) and REMOVE (ids to delete). */
  readonly base: number;
}

async function runWorker(a: WorkerArgs): Promise<void> {
  const data = Buffer.alloc(a.size, 0x5a);
  if (a.op === 'FILL') {
    const c = await CacheClient.connect(a.target);
    const depth = 256;
    let next = 0;
    await Promise.all(Array.from({ length: depth }, async () => {
      while (next < a.ids) await c.add(idOf(next++), data, TIMEOUT_MS);
    }));
    c.destroy();
    process.stdout.write(JSON.stringify({ ops: a.ids, ms: 0 }) + '\n');
    return;
  }
  const end = Date.now() + a.ms;
  let ops = 0;
  let fresh = a.base;
  let removeNext = a.base;
  let seed = 12345;
  const random = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % Math.max(1, a.ids);
  };
  const start = Date.now();
  if (a.op === 'CONNECT_GET') {
    await Promise.all(Array.from({ length: a.clients }, async () => {
      while (Date.now() < end) {
        const c = await CacheClient.connect(a.target);
        await c.get(idOf(random()));
        c.destroy();
        ops++;
      }
    }));
  } else {
    const clients = await Promise.all(Array.from({ length: a.clients }, () => CacheClient.connect(a.target)));
    await Promise.all(clients.map(async (c) => {
      while (Date.now() < end) {
        switch (a.op) {
          case 'ADD':
            await c.add(idOf(fresh++), data, TIMEOUT_MS);
            break;
          case 'GET':
            await c.get(idOf(random()));
            break;
          case 'HAVE':
            await c.have(idOf(random()));
            break;
          case 'REMOVE':
            await c.remove(idOf(removeNext++));
            break;
        }
        ops++;
      }
    }));
    clients.forEach((c) => c.destroy());
  }
  process.stdout.write(JSON.stringify({ ops, ms: Date.now() - start, nextBase: Math.max(fresh, removeNext) }) + '\n');
}

function runLoad(a: WorkerArgs): Promise<{ ops: number; ms: number; nextBase?: number }> {
  return new Promise((resolve, reject) => {
    const child = track(spawn('taskset', ['-c', '1', process.execPath, SELF, '--worker', JSON.stringify(a)], { stdio: ['ignore', 'pipe', 'inherit'] }));
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`load worker exited ${code}`))));
  });
}

// ---------------------------------------------------------------- servers (CPU 0)

/** Every process we start, so an interrupted bench leaves none behind (ended by PID). */
const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
let benchDir: string | undefined;
process.on('exit', () => {
  children.forEach((c) => c.kill('SIGKILL'));
  if (benchDir !== undefined) fs.rmSync(benchDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGPIPE'] as const) process.on(signal, () => process.exit(130));

interface Server {
  readonly child: ChildProcess;
  readonly target: CacheTarget;
}

async function startServer(kind: 'ours' | 'responder', transport: 'unix' | 'tcp', dir: string, sessions: number, size: number, extra: readonly string[] = []): Promise<Server> {
  const sock = path.join(dir, `${kind}${extra.length > 0 ? '-extra' : ''}.sock`);
  const args = kind === 'ours'
    ? [DC_SERVER, '-listen', transport === 'unix' ? `UNIX:${sock}` : 'IP:127.0.0.1:0', '-sessions', String(Math.max(512, sessions)), '-loglevel', 'notice', ...extra]
    : [RESPONDER, transport === 'unix' ? sock : '0', String(size)];
  const child = track(spawn('taskset', ['-c', '0', process.execPath, '--max-old-space-size=4096', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const until = Date.now() + 10_000;
  for (;;) {
    const m = /listening on=127\.0\.0\.1:(\d+)|listening (\d+)\n/.exec(text);
    if (transport === 'tcp' && m !== null) return { child, target: { host: '127.0.0.1', port: Number(m[1] ?? m[2]) } };
    if (transport === 'unix' && /listening/.test(text) && fs.existsSync(sock)) return { child, target: { path: sock } };
    if (child.exitCode !== null || Date.now() > until) throw new Error(`${kind} did not start: ${text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stopServer(s: Server): Promise<void> {
  if (s.child.exitCode !== null) return;
  const gone = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

/** The node process's RSS (taskset execs node in place, so the child pid is node's). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

// ---------------------------------------------------------------- main

/** dc_server without and with -metrics, 1 client on a unix socket, alternated: ops/s medians. */
async function metricsCost(ms: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-bench-'));
  benchDir = dir;
  const sessions = 50_000;
  const size = 150;
  const plain = await startServer('ours', 'unix', dir, sessions, size);
  const counted = await startServer('ours', 'unix', dir, sessions, size, ['-metrics', '127.0.0.1:0']);
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  try {
    for (const s of [plain, counted]) await runLoad({ target: s.target, op: 'FILL', clients: 1, ms: 0, ids: sessions, size, base: 0 });
    console.log(`metrics cost: dc_server, unix socket, 1 client, ${sessions} sessions of ${size} B, ${ms} ms per run, 7 alternated rounds, node ${process.version}`);
    for (const op of ['GET', 'ADD'] as const) {
      const rates: Record<'plain' | 'counted', number[]> = { plain: [], counted: [] };
      let base = sessions;
      for (let round = 0; round < 7; round++) {
        for (const [name, s] of [['plain', plain], ['counted', counted]] as const) {
          const r = await runLoad({ target: s.target, op, clients: 1, ms, ids: sessions, size, base });
          rates[name].push((r.ops * 1000) / r.ms);
          if (op === 'ADD') base = Math.max(base, r.nextBase ?? base);
        }
      }
      const p = median(rates.plain);
      const c = median(rates.counted);
      console.log(`${op.padEnd(4)} without -metrics ${p.toFixed(0).padStart(7)} ops/s   with -metrics ${c.toFixed(0).padStart(7)} ops/s   ratio ${(c / p).toFixed(3)}   (runs: ${rates.plain.map((x) => x.toFixed(0)).join(' ')} | ${rates.counted.map((x) => x.toFixed(0)).join(' ')})`);
    }
  } finally {
    await stopServer(plain);
    await stopServer(counted);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--metrics-cost')) return metricsCost(arg('--ms', 1000));
  const quick = process.argv.includes('--quick');
  const ms = arg('--ms', quick ? 300 : 1000);
  const populations = quick ? [512, 50_000] : [512, 50_000, 1_000_000];
  const sizes = [150, 4096];
  const clientCounts = [1, 4, 16];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-bench-'));
  benchDir = dir;
  console.log(`cache bench: ${ms} ms per cell, server on CPU 0, load on CPU 1, ${os.cpus().length} CPUs, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log('(other work on the same CPUs skews single cells: compare the ours/responder ratios, measured back to back)');
  console.log('transport sessions  size op       clients    ours ops/s  responder ops/s  ours/responder');
  try {
    for (const transport of ['unix', 'tcp'] as const) {
      for (const sessions of populations) {
        for (const size of sizes) {
          if (sessions * (size + ID_BYTES) > 1.5 * 2 ** 30) {
            console.log(`${transport.padEnd(9)} ${String(sessions).padStart(8)} ${String(size).padStart(5)} (skipped: ${((sessions * size) / 2 ** 30).toFixed(1)} GB of session data)`);
            continue;
          }
          const ours = await startServer('ours', transport, dir, sessions, size);
          const responder = await startServer('responder', transport, dir, sessions, size);
          try {
            const before = rssOf(ours.child.pid!);
            await runLoad({ target: ours.target, op: 'FILL', clients: 1, ms: 0, ids: sessions, size, base: 0 });
            const after = rssOf(ours.child.pid!);
            console.log(`${transport.padEnd(9)} ${String(sessions).padStart(8)} ${String(size).padStart(5)} RSS per stored session: ${Math.round((after - before) / sessions)} B (${(after / 2 ** 20).toFixed(0)} MB total)`);
            // ADD stores fresh ids from addBase up; REMOVE deletes the pre-filled ids from removeBase up.
            const bases = { add: sessions, remove: 0 };
            const baseOf = (op: string): number => (op === 'REMOVE' ? bases.remove : bases.add);
            const advance = (op: string, next: number | undefined): void => {
              if (op === 'REMOVE') bases.remove = Math.max(bases.remove, next ?? 0);
              else if (op === 'ADD') bases.add = Math.max(bases.add, next ?? 0);
            };
            // Warm both up (JIT, socket buffers) so the first measured cell is not the cold one.
            for (const op of ['GET', 'HAVE'] as const) {
              const w = await runLoad({ op, clients: 4, ms: Math.ceil(ms / 3), ids: sessions, size, target: ours.target, base: baseOf(op) });
              await runLoad({ op, clients: 4, ms: Math.ceil(ms / 3), ids: sessions, size, target: responder.target, base: baseOf(op) });
              advance(op, w.nextBase);
            }
            for (const op of [...OPS, 'CONNECT_GET'] as const) {
              for (const clients of op === 'CONNECT_GET' ? [4] : clientCounts) {
                const a = { op, clients, ms, ids: sessions, size };
                const o = await runLoad({ ...a, target: ours.target, base: baseOf(op) });
                const r = await runLoad({ ...a, target: responder.target, base: baseOf(op) });
                advance(op, o.nextBase);
                const oursRate = (o.ops * 1000) / o.ms;
                const respRate = (r.ops * 1000) / r.ms;
                console.log(
                  `${transport.padEnd(9)} ${String(sessions).padStart(8)} ${String(size).padStart(5)} ${op.padEnd(11)} ${String(clients).padStart(3)} ${oursRate.toFixed(0).padStart(14)} ${respRate.toFixed(0).padStart(16)} ${(oursRate / respRate).toFixed(2).padStart(15)}`,
                );
              }
            }
          } finally {
            await stopServer(ours);
            await stopServer(responder);
          }
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log('REMOVE deletes pre-filled ids in order (hits while they last); ADD stores fresh ids (the full cache evicts).');
}

if (process.argv[2] === '--worker') {
  runWorker(JSON.parse(process.argv[3]!) as WorkerArgs).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`load worker: ${String(error)}\n`);
      process.exit(1);
    },
  );
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
