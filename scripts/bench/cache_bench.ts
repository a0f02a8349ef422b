// `npm run bench -- cache [--quick] [--ms N]`: our dc_server against the real C dc_server 1.5.1
// (built once by scripts/bench/c_distcache.sh into the bench's cache dir), side by side in one
// run with the same load generator (scripts/bench/cache_load.c, C, compiled at bench time so the
// generator is never the limit: its own CPU share is printed for every cell). Servers on CPU 0,
// the generator on CPU 1 (taskset).
//
// Every cell: store size 512 / 50,000 / 1,000,000 (C caps at 60,000) x 150 B and 4 KB sessions
// x unix and TCP x GET/HAVE/REMOVE/ADD with 1, 4 and 16 persistent clients (one request
// outstanding each, as Apache's mod_socache_dc does) and connect-per-operation GETs, printed as
// ops/s of each target and ours/C; the minimal responder (our codec and node's sockets, no store)
// is the ceiling row. After each fill: resident memory of each server per payload byte (RSS from
// /proc over sessions x (32-byte id + data)). Then app -> dc_client -> dc_server, ours against
// the C chain. Loopback and private unix sockets only; every process stopped by PID.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildLoadGenerator, runLoad, type LoadOp, type LoadResult } from './cache_load';
import { chainTarget, cpuMsOf, cTarget, oursTarget, responderTarget, rssOf, type CacheBenchTarget, type RunningServer, type Transport } from './cache_targets';

const REPO = path.resolve(__dirname, '../../..');
const SERVER_CPUS = '0';
const LOAD_CPUS = '1';
const ID_BYTES = 32;
// Lookups first, ADD last: fresh ADDs into a full cache evict the pre-filled sessions.
const OPS: readonly LoadOp[] = ['GET', 'HAVE', 'REMOVE', 'ADD', 'CONNECT_GET'];
/** Session data a run may hold in each server at once. */
const MAX_FILL_BYTES = 1.5 * 2 ** 30;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

const pad = (v: string | number, n: number): string => String(v).padStart(n);

/** The C distcache prefix, built once (c_distcache.sh locks so two benches do not race). */
function buildC(): string {
  return execFileSync('bash', [path.join(REPO, 'scripts/bench/c_distcache.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

interface Bench {
  readonly load: string;
  readonly ms: number;
  readonly clientCounts: readonly number[];
  readonly dir: string;
}

/** One server's view of a fill: where ADD and REMOVE continue from. */
interface Live {
  readonly server: RunningServer;
  addBase: number;
  removeBase: number;
}

/** One cell on one server, with the server's CPU time per operation (µs): unlike ops/s it hardly
 * moves when other work shares the CPUs. */
async function measure(bench: Bench, live: Live, op: LoadOp, clients: number, ms: number, ids: number, size: number): Promise<LoadResult & { serverUs: number }> {
  const base = op === 'REMOVE' ? live.removeBase : live.addBase;
  const pids = live.server.cpuPids ?? [live.server.pid];
  const cpuNow = (): number => pids.reduce((sum, pid) => sum + cpuMsOf(pid), 0);
  const cpuBefore = cpuNow();
  const r = await runLoad(bench.load, LOAD_CPUS, { target: live.server.target, op, clients, ms, ids, size, base });
  const serverUs = ((cpuNow() - cpuBefore) * 1000) / Math.max(1, r.ops);
  if (op === 'REMOVE') live.removeBase = r.nextBase;
  if (op === 'ADD') live.addBase = r.nextBase;
  return { ...r, serverUs };
}

/** Fills every target with `sessions` sessions, prints memory, then every op x clients cell. */
async function runFill(bench: Bench, targets: readonly CacheBenchTarget[], transport: Transport, sessions: number, size: number): Promise<void> {
  const label = `${transport.padEnd(5)} ${pad(sessions, 8)} ${pad(size, 5)}`;
  const lives: (Live | undefined)[] = [];
  try {
    for (const t of targets) {
      const why = t.cannot(sessions);
      if (why !== undefined) {
        lives.push(undefined);
        continue;
      }
      const server = await t.start({ transport, dir: bench.dir, sessions, size, cpus: SERVER_CPUS });
      lives.push({ server, addBase: sessions, removeBase: 0 });
    }
    const memory: string[] = [];
    for (const [i, live] of lives.entries()) {
      if (live === undefined) {
        memory.push(`${targets[i]!.name}: ${targets[i]!.cannot(sessions)}`);
        continue;
      }
      const t = targets[i]!;
      if (t.stores === false) continue;
      const before = rssOf(live.server.pid);
      await runLoad(bench.load, LOAD_CPUS, { target: live.server.target, op: 'FILL', clients: 16, ms: 0, ids: sessions, size, base: 0, depth: t.fillDepth ?? 1 });
      const after = rssOf(live.server.pid);
      const payload = sessions * (ID_BYTES + size);
      memory.push(`${t.name} ${(after / 2 ** 20).toFixed(1)} MB = ${(after / payload).toFixed(2)} B/payload B (fill added ${(Math.max(0, after - before) / 2 ** 20).toFixed(1)} MB)`);
    }
    console.log(`${label} memory after fill: ${memory.join('; ')}`);
    // Warm up (JIT, socket buffers) so the first measured cell is not the cold one.
    for (const live of lives) if (live !== undefined) await measure(bench, live, 'GET', 4, Math.ceil(bench.ms / 2), sessions, size);
    for (const op of OPS) {
      for (const clients of bench.clientCounts) {
        const rates: (number | undefined)[] = [];
        const cpu: (number | undefined)[] = [];
        let genShare = 0;
        for (const live of lives) {
          if (live === undefined) {
            rates.push(undefined);
            cpu.push(undefined);
            continue;
          }
          const r = await measure(bench, live, op, clients, bench.ms, sessions, size);
          rates.push((r.ops * 1000) / r.ms);
          cpu.push(r.serverUs);
          genShare = Math.max(genShare, r.cpuMs / r.ms);
        }
        printRow(label, op, clients, targets, rates, cpu, genShare);
      }
    }
  } finally {
    for (const live of lives) await live?.server.stop();
  }
}

function printHeader(targets: readonly CacheBenchTarget[]): void {
  console.log(`trans sessions  size op          cl ${targets.map((t) => pad(t.name, 10)).join(' ')}  ours/C  ours/resp  gen%  server CPU µs/op: ${targets.map((t) => t.name).join(' / ')}`);
}

function printRow(label: string, op: string, clients: number, targets: readonly CacheBenchTarget[], rates: readonly (number | undefined)[], cpu: readonly (number | undefined)[], genShare: number): void {
  const rateOf = (name: string): number | undefined => rates[targets.findIndex((t) => t.name === name)];
  const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '-' : (a / b).toFixed(2));
  const ours = rateOf('ours') ?? rateOf('ours chain');
  const c = rateOf('C') ?? rateOf('C chain');
  console.log(
    `${label} ${op.padEnd(11)} ${pad(clients, 2)} ${rates.map((r) => pad(r === undefined ? '-' : r.toFixed(0), 10)).join(' ')}  ${pad(ratio(ours, c), 6)}  ${pad(ratio(ours, rateOf('responder')), 9)}  ${pad((genShare * 100).toFixed(0), 4)}  ${cpu.map((u) => (u === undefined ? '-' : u.toFixed(1))).join(' / ')}`,
  );
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const ms = arg('--ms', quick ? 250 : 1000);
  const populations = quick ? [512, 50_000] : [512, 50_000, 1_000_000];
  const sizes = quick ? [150] : [150, 4096];
  const prefix = buildC();
  const load = buildLoadGenerator(path.dirname(prefix));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-bench-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => process.exit(130));
  const bench: Bench = { load, ms, clientCounts: [1, 4, 16], dir };
  const servers = [oursTarget(REPO), cTarget(prefix), responderTarget(REPO)];
  console.log(`cache bench: ${ms} ms per cell; servers on CPU ${SERVER_CPUS}, load generator (C) on CPU ${LOAD_CPUS}; ${os.cpus().length} CPUs; node ${process.version}; C dc_server from ${prefix}`);
  console.log(`load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on these CPUs moves single cells: compare the ratios, measured back to back)`);
  console.log('ops/s per target; gen% = the load generator\'s CPU share (near 100: the generator was the limit); server CPU µs/op from /proc (10 ms ticks)');
  printHeader(servers);
  for (const transport of ['unix', 'tcp'] as const) {
    for (const sessions of populations) {
      for (const size of sizes) {
        if (sessions * (size + ID_BYTES) > MAX_FILL_BYTES) {
          console.log(`${transport.padEnd(5)} ${pad(sessions, 8)} ${pad(size, 5)} (skipped: ${((sessions * size) / 2 ** 30).toFixed(1)} GB of session data)`);
          continue;
        }
        await runFill(bench, servers, transport, sessions, size);
      }
    }
  }
  // app -> dc_client -> dc_server, each chain all ours or all C.
  const chains = [
    chainTarget('ours chain', (listen, server) => [process.execPath, path.join(REPO, 'dist/src/cli/dc_client.js'), '-listen', listen, '-server', server, '-loglevel', 'notice'], oursTarget(REPO)),
    chainTarget('C chain', (listen, server) => [path.join(prefix, 'bin/dc_client'), '-listen', listen, '-server', server], cTarget(prefix)),
  ];
  console.log('app -> dc_client -> dc_server (memory: the proxy\'s)');
  printHeader(chains);
  await runFill(bench, chains, 'unix', 512, 150);
  console.log(`load average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('REMOVE deletes pre-filled ids in order (hits while they last); ADD stores fresh ids (a full cache evicts); payload = 32-byte id + data.');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
