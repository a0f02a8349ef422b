// How the cache bench measures a list of targets at one fill: start each, fill it, weigh it,
// then every op x clients cell on each target back to back, one printed row per cell with the
// ratios the table asks for. The main table, the dc_client chains, the Redis rows and the
// metrics cost all measure through here, so their figures mean the same thing.

import { runLoad, type LoadOp, type LoadResult } from './cache_load';
import { cpuMsOf, rssOf, type CacheBenchTarget, type RunningServer, type Transport } from './cache_targets';

export const SERVER_CPUS = '0';
export const LOAD_CPUS = '1';
export const ID_BYTES = 32;

/** A ratio column: ops/s of target `of` over ops/s of target `over` (by name). */
export interface Ratio {
  readonly label: string;
  readonly of: string;
  readonly over: string;
}

export interface Bench {
  readonly load: string;
  readonly ms: number;
  readonly clientCounts: readonly number[];
  readonly dir: string;
}

export interface Table {
  readonly targets: readonly CacheBenchTarget[];
  readonly ops: readonly LoadOp[];
  readonly ratios: readonly Ratio[];
}

/** One server's view of a fill: where ADD and REMOVE continue from, and where the last REMOVE
 * cell started (what it deleted, removeFrom..removeBase, is added back before the next). */
export interface Live {
  readonly server: RunningServer;
  addBase: number;
  removeBase: number;
  removeFrom: number;
}

const pad = (v: string | number, n: number): string => String(v).padStart(n);
const width = (t: CacheBenchTarget): number => Math.max(10, t.name.length);
const sumOf = (pids: readonly number[], f: (pid: number) => number): number => pids.reduce((sum, pid) => sum + f(pid), 0);
/** Server CPU µs per operation; frontUs: the front process's own, when more processes serve it. */
export interface CpuCost {
  readonly serverUs: number;
  readonly frontUs?: number;
}
/** A REMOVE cell's share of hits (a delete once the fill is used up is a cheap miss). */
const hitText = (r: LoadResult | undefined): string => (r === undefined ? '-' : `${((100 * (r.ops - r.notok)) / Math.max(1, r.ops)).toFixed(0)}%`);
const cpuText = (u: CpuCost | undefined): string => (u === undefined ? '-' : u.frontUs === undefined ? u.serverUs.toFixed(1) : `${u.serverUs.toFixed(1)} (${u.frontUs.toFixed(1)})`);

/** One cell on one server, with the server's CPU time per operation (µs): unlike ops/s it hardly
 * moves when other work shares the CPUs. */
export async function measure(bench: Bench, live: Live, cell: { op: LoadOp; clients: number; ms: number; ids: number; size: number }): Promise<LoadResult & CpuCost> {
  const { op } = cell;
  if (op === 'REMOVE' && live.removeBase > live.removeFrom) {
    // Each REMOVE cell starts from the full fill: what the cell before deleted is added back
    // first (unmeasured), so no REMOVE cell measures deletes on an emptied store; the cell then
    // carries on along the scattered order, past the ids added back.
    const end = Math.min(live.removeBase, live.removeFrom + cell.ids);
    await runLoad(bench.load, LOAD_CPUS, { target: live.server.target, op: 'RESTORE', clients: 16, ms: 0, ids: cell.ids, size: cell.size, base: live.removeFrom, end });
  }
  if (op === 'REMOVE') live.removeFrom = live.removeBase;
  const base = op === 'REMOVE' ? live.removeBase : live.addBase;
  const pids = live.server.cpuPids ?? [live.server.pid];
  const before = pids.map(cpuMsOf);
  const r = await runLoad(bench.load, LOAD_CPUS, { target: live.server.target, ...cell, base });
  const usOf = pids.map((pid, i) => ((cpuMsOf(pid) - before[i]!) * 1000) / Math.max(1, r.ops));
  if (op === 'REMOVE') live.removeBase = r.nextBase;
  if (op === 'ADD') live.addBase = r.nextBase;
  return { ...r, serverUs: usOf.reduce((a, b) => a + b, 0), ...(pids.length > 1 ? { frontUs: usOf[0]! } : {}) };
}

/** Starts every target that can hold `sessions`; undefined in the place of one that cannot. */
export async function startAll(bench: Bench, targets: readonly CacheBenchTarget[], transport: Transport, sessions: number, size: number): Promise<(Live | undefined)[]> {
  const lives: (Live | undefined)[] = [];
  try {
    for (const t of targets) {
      if (t.cannot(sessions) !== undefined) {
        lives.push(undefined);
        continue;
      }
      const server = await t.start({ transport, dir: bench.dir, sessions, size, cpus: SERVER_CPUS });
      lives.push({ server, addBase: sessions, removeBase: 0, removeFrom: 0 });
    }
  } catch (error) {
    await stopAll(lives);
    throw error;
  }
  return lives;
}

export async function stopAll(lives: readonly (Live | undefined)[]): Promise<void> {
  for (const live of lives) await live?.server.stop();
}

/** Adds ids 0..sessions-1 to every live server that stores; returns the memory line. */
export async function fillAll(bench: Bench, targets: readonly CacheBenchTarget[], lives: readonly (Live | undefined)[], sessions: number, size: number): Promise<string> {
  const memory: string[] = [];
  for (const [i, live] of lives.entries()) {
    const t = targets[i]!;
    if (live === undefined) {
      memory.push(`${t.name}: ${t.cannot(sessions)}`);
      continue;
    }
    if (t.stores === false) continue;
    const pids = live.server.rssPids ?? [live.server.pid];
    const before = sumOf(pids, rssOf);
    await runLoad(bench.load, LOAD_CPUS, { target: live.server.target, op: 'FILL', clients: 16, ms: 0, ids: sessions, size, base: 0, depth: t.fillDepth ?? 1 });
    const after = sumOf(pids, rssOf);
    const payload = sessions * (ID_BYTES + size);
    memory.push(`${t.name} ${(after / 2 ** 20).toFixed(1)} MB = ${(after / payload).toFixed(2)} B/payload B (fill added ${(Math.max(0, after - before) / 2 ** 20).toFixed(1)} MB)`);
  }
  return memory.join('; ');
}

/** What one fill measured: by `${op} ${clients}`, each target's ops/s and server CPU µs/op (in
 * the table's target order; undefined for a target that could not hold the fill). */
export type FillResults = Map<string, { readonly rates: readonly (number | undefined)[]; readonly cpu: readonly (CpuCost | undefined)[] }>;

/** Fills every target with `sessions` sessions, prints memory, then every op x clients cell. */
export async function runFill(bench: Bench, table: Table, transport: Transport, sessions: number, size: number): Promise<FillResults> {
  const results: FillResults = new Map();
  const { targets } = table;
  const label = `${transport.padEnd(5)} ${pad(sessions, 8)} ${pad(size, 5)}`;
  const lives = await startAll(bench, targets, transport, sessions, size);
  try {
    console.log(`${label} memory after fill: ${await fillAll(bench, targets, lives, sessions, size)}`);
    // Warm up (JIT, socket buffers) so the first measured cell is not the cold one.
    for (const live of lives) if (live !== undefined) await measure(bench, live, { op: 'GET', clients: 4, ms: Math.ceil(bench.ms / 2), ids: sessions, size });
    for (const op of table.ops) {
      for (const clients of bench.clientCounts) {
        const rates: (number | undefined)[] = [];
        const cpu: ((LoadResult & CpuCost) | undefined)[] = [];
        let genShare = 0;
        for (const live of lives) {
          if (live === undefined) {
            rates.push(undefined);
            cpu.push(undefined);
            continue;
          }
          const r = await measure(bench, live, { op, clients, ms: bench.ms, ids: sessions, size });
          rates.push((r.ops * 1000) / r.ms);
          cpu.push(r);
          genShare = Math.max(genShare, r.cpuMs / r.ms);
        }
        printRow(label, op, clients, table, rates, cpu, genShare);
        results.set(`${op} ${clients}`, { rates, cpu });
      }
    }
  } finally {
    await stopAll(lives);
  }
  return results;
}

export function printHeader(table: Table): void {
  const { targets } = table;
  const ratios = table.ratios.map((r) => pad(r.label, Math.max(6, r.label.length))).join('  ');
  console.log(`trans sessions  size op          cl ${targets.map((t) => pad(t.name, width(t))).join(' ')}  ${ratios}  gen%  server CPU µs/op (in brackets: the front process alone): ${targets.map((t) => t.name).join(' / ')}`);
}

function printRow(label: string, op: string, clients: number, table: Table, rates: readonly (number | undefined)[], cpu: readonly ((LoadResult & CpuCost) | undefined)[], genShare: number): void {
  const { targets } = table;
  const rateOf = (name: string): number | undefined => rates[targets.findIndex((t) => t.name === name)];
  const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '-' : (a / b).toFixed(2));
  const ratios = table.ratios.map((r) => pad(ratio(rateOf(r.of), rateOf(r.over)), Math.max(6, r.label.length))).join('  ');
  console.log(
    `${label} ${op.padEnd(11)} ${pad(clients, 2)} ${rates.map((r, i) => pad(r === undefined ? '-' : r.toFixed(0), width(targets[i]!))).join(' ')}  ${ratios}  ${pad((genShare * 100).toFixed(0), 4)}  ${cpu.map(cpuText).join(' / ')}${op === 'REMOVE' ? `  hits ${cpu.map((r, i) => (targets[i]!.stores === false ? '-' : hitText(r))).join(' / ')}` : ''}`,
  );
}
