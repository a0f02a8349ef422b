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
// the C chain. Last, ours on Redis beside ours in memory and C (cache_bench_redis.ts).
// Loopback and private unix sockets only; every process stopped by PID.
//
// `--sessions N` and `--size N` run only that store size / session size (e.g. `--sessions 512`
// while iterating; `--sessions 512,1000000` runs both and prints ours at 10^6 over ours at 512);
// `--stream` adds our dc_server on Node's streams (DISTKIT_CACHE_IO=stream, the
// path before the native socket pump) as a row beside the default, to show the pump's gain.
// `--only-chain` runs only the dc_client chains (with `--stream`: also our dc_client on Node's
// streams; `--chain-from DIR`: also the dc_client built in DIR, e.g. main's, in the same run).
// `--only-redis` runs the Redis rows alone (`--rounds N`: rounds of their goal rows), `--no-redis` leaves them out; `--metrics-cost` only dc_server without and with
// -metrics (cache_metrics_cost.ts, `npm run bench -- metrics`).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchRedisRows } from './cache_bench_redis';
import { ID_BYTES, LOAD_CPUS, printHeader, runFill, SERVER_CPUS, type Bench, type FillResults, type Table } from './cache_cells';
import { buildLoadGenerator, type LoadOp } from './cache_load';
import { measureMetricsCost } from './cache_metrics_cost';
import { chainTarget, cTarget, oursTarget, responderTarget } from './cache_targets';

const REPO = path.resolve(__dirname, '../../..');
// Lookups first, ADD last: fresh ADDs into a full cache evict the pre-filled sessions.
const OPS: readonly LoadOp[] = ['GET', 'HAVE', 'REMOVE', 'ADD', 'CONNECT_GET'];
/** Session data a run may hold in each server at once. */
const MAX_FILL_BYTES = 1.5 * 2 ** 30;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

function argText(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const pad = (v: string | number, n: number): string => String(v).padStart(n);
const loadAverage = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');

/** The C distcache prefix, built once (c_distcache.sh locks so two benches do not race). */
function buildC(): string {
  return execFileSync('bash', [path.join(REPO, 'scripts/bench/c_distcache.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/** Every cell of ours, C and the responder, then the dc_client chains. */
async function benchTables(bench: Bench, prefix: string, quick: boolean): Promise<void> {
  const stream = process.argv.includes('--stream');
  if (!process.argv.includes('--only-chain')) await benchServers(bench, prefix, quick, stream);
  // app -> dc_client -> dc_server, each chain all ours or all C.
  const proxy = (dir: string, env?: Readonly<Record<string, string>>) => (listen: string, server: string) => [
    ...(env === undefined ? [] : ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`)]),
    process.execPath,
    path.join(dir, 'dist/src/cli/dc_client.js'),
    '-listen',
    listen,
    '-server',
    server,
    '-loglevel',
    'notice',
  ];
  const other = argText('--chain-from');
  const chains: Table = {
    targets: [
      chainTarget('ours chain', proxy(REPO), oursTarget(REPO)),
      chainTarget('C chain', (listen, server) => [path.join(prefix, 'bin/dc_client'), '-listen', listen, '-server', server], cTarget(prefix)),
      ...(stream ? [chainTarget('stream chain', proxy(REPO, { DISTKIT_CACHE_IO: 'stream' }), oursTarget(REPO))] : []),
      ...(other === undefined ? [] : [chainTarget('other chain', proxy(path.resolve(other)), oursTarget(REPO))]),
    ],
    ops: OPS,
    ratios: [
      { label: 'ours/C', of: 'ours chain', over: 'C chain' },
      ...(stream ? [{ label: 'stream/C', of: 'stream chain', over: 'C chain' }] : []),
      ...(other === undefined ? [] : [{ label: 'other/C', of: 'other chain', over: 'C chain' }]),
    ],
  };
  console.log('app -> dc_client -> dc_server (memory: the proxy\'s; server µs/op: the proxy\'s and the server\'s)');
  console.log('goal (issue 17, as dc_server\'s at 512 sessions): ours/C >= 1.00 in every row, CONNECT_GET (Apache\'s mod_socache_dc) included');
  if (stream) console.log('stream chain: our dc_client on Node\'s sockets (DISTKIT_CACHE_IO=stream), dc_server on the pump');
  if (other !== undefined) console.log(`other chain: the dc_client built in ${path.resolve(other)} (e.g. main's), dc_server ours`);
  printHeader(chains);
  await runFill(bench, chains, 'unix', 512, 150);
  console.log('REMOVE deletes the filled ids in a scattered order (hits while they last: each REMOVE row ends with the share of hits per target), each REMOVE cell from the full fill (what the cell before deleted is added back first, unmeasured); ADD stores fresh ids (a full cache evicts); payload = 32-byte id + data.');
}

/** Our dc_server, C's and the responder: every cell. */
async function benchServers(bench: Bench, prefix: string, quick: boolean, stream: boolean): Promise<void> {
  // `--sessions 512,1000000`: a comma list picks several.
  const only = (name: string, all: number[]): number[] => (process.argv.includes(name) ? all.filter((n) => (argText(name) ?? '').split(',').map(Number).includes(n)) : all);
  const populations = only('--sessions', quick ? [512, 50_000] : [512, 50_000, 1_000_000]);
  const sizes = only('--size', quick ? [150] : [150, 4096]);
  const main: Table = {
    targets: [
      oursTarget(REPO),
      cTarget(prefix),
      responderTarget(REPO),
      ...(stream ? [oursTarget(REPO, { name: 'stream', env: { DISTKIT_CACHE_IO: 'stream' } })] : []),
    ],
    ops: OPS,
    ratios: [
      { label: 'ours/C', of: 'ours', over: 'C' },
      { label: 'ours/resp', of: 'ours', over: 'responder' },
      ...(stream ? [{ label: 'stream/C', of: 'stream', over: 'C' }] : []),
    ],
  };
  console.log('goal (issue 17): ours/C >= 1.00 in every row at 512 sessions; at 1,000,000 sessions at most 2.0 resident B/payload B (the memory line) and ours at 1,000,000 / ours at 512 >= 0.80 (the lines after each transport)');
  printHeader(main);
  for (const transport of ['unix', 'tcp'] as const) {
    const fills = new Map<string, FillResults>();
    for (const sessions of populations) {
      for (const size of sizes) {
        if (sessions * (size + ID_BYTES) > MAX_FILL_BYTES) {
          console.log(`${transport.padEnd(5)} ${pad(sessions, 8)} ${pad(size, 5)} (skipped: ${((sessions * size) / 2 ** 30).toFixed(1)} GB of session data)`);
          continue;
        }
        fills.set(`${sessions} ${size}`, await runFill(bench, main, transport, sessions, size));
      }
    }
    for (const size of sizes) printLargeOverSmall(transport, size, fills.get(`1000000 ${size}`), fills.get(`512 ${size}`));
  }
}

/** Ours at 1,000,000 sessions over ours at 512, per cell: ops/s, and in brackets the inverse of
 * server CPU µs/op (which other work on the CPUs moves far less). */
function printLargeOverSmall(transport: string, size: number, large: FillResults | undefined, small: FillResults | undefined): void {
  if (large === undefined || small === undefined) return;
  const ours = 0; // the main table's first target
  const cells = new Map<string, string[]>();
  for (const [cell, l] of large) {
    const s = small.get(cell);
    const [op, clients] = cell.split(' ');
    const rate = l.rates[ours] !== undefined && s?.rates[ours] !== undefined ? (l.rates[ours]! / s.rates[ours]!).toFixed(2) : '-';
    const cpu = l.cpu[ours] !== undefined && s?.cpu[ours] !== undefined ? (s.cpu[ours]!.serverUs / l.cpu[ours]!.serverUs).toFixed(2) : '-';
    cells.set(op!, [...(cells.get(op!) ?? []), `${clients}: ${rate} (${cpu})`]);
  }
  const rows = [...cells].map(([op, values]) => `${op} ${values.join(' ')}`);
  console.log(`${transport.padEnd(5)} ${pad(size, 5)} B ours at 1,000,000 / ours at 512, ops/s (CPU), goal >= 0.80 by clients: ${rows.join(' | ')}`);
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const metricsCost = process.argv.includes('--metrics-cost');
  const onlyRedis = process.argv.includes('--only-redis');
  const ms = arg('--ms', metricsCost ? 300 : quick ? 250 : 1000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-bench-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => process.exit(130));
  const prefix = buildC();
  const bench: Bench = { load: buildLoadGenerator(path.dirname(prefix)), ms, clientCounts: [1, 4, 16], dir };
  console.log(`cache bench: ${ms} ms per cell; servers on CPU ${SERVER_CPUS}, load generator (C) on CPU ${LOAD_CPUS}; ${os.cpus().length} CPUs; node ${process.version}; C dc_server from ${prefix}`);
  console.log(`load average at start: ${loadAverage()} (other work on these CPUs moves single cells: compare the ratios, measured back to back)`);
  if (metricsCost) {
    await measureMetricsCost(bench, REPO, arg('--rounds', 21));
  } else {
    console.log('ops/s per target; gen% = the load generator\'s CPU share (near 100: the generator was the limit); server CPU µs/op from /proc (10 ms ticks)');
    if (!onlyRedis) await benchTables(bench, prefix, quick);
    if (!process.argv.includes('--no-redis')) await benchRedisRows(bench, REPO, prefix, arg('--rounds', quick ? 3 : 5));
  }
  console.log(`load average at end: ${loadAverage()}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
