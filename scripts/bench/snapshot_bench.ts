// `npm run bench -- snapshot`: how long dc_server takes to write its session snapshot at stop and
// to load it at start, with N sessions (default 1,000,000; goal: under 2 s each). It times the
// real path dc_server runs (SnapshotKeeper over a SlabStore: entries, encode, write, fsync,
// rename; then read, check, add every session to a fresh store, remove the file), on tmpfs (/dev/shm, where the
// shipped units keep it: /run) and on the disk of os.tmpdir(). Sessions are 32-byte ids with
// 150 bytes of data (an Apache TLS session is about that size). Not part of `npm test`.
// Usage: node dist/scripts/bench/snapshot_bench.js [--sessions N] [--runs R]

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, type Level } from '../../src/log/index';
import { SlabStore } from '../../src/cache/stores/slab_store';
import { SnapshotKeeper } from '../../src/cache/snapshot/snapshot_keeper';
import { readSnapshotFile } from '../../src/cache/snapshot/snapshot_file';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const SESSIONS = Number(argValue('--sessions') ?? 1_000_000);
const RUNS = Number(argValue('--runs') ?? 3);
const DATA_BYTES = 150;
const GOAL_MS = 2000;

function filledStore(now: number): SlabStore {
  const store = new SlabStore({ capacity: Math.max(SESSIONS, 64) });
  const seed = crypto.randomBytes(32 + DATA_BYTES);
  for (let i = 0; i < SESSIONS; i++) {
    seed.writeUInt32LE(i, 0);
    store.add(now, seed.subarray(0, 32), seed.subarray(32), 300_000 + (i % 1000));
  }
  return store;
}

/** CPU time (user + system) in ms: on a busy machine wall time also counts the other processes. */
function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(where: string, store: SlabStore, now: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(where, 'distkit-snapshot-bench-'));
  const file = path.join(dir, 'dc_server.snapshot');
  const log = createLogger('snapshot-bench', { level: 'info' });
  const errors: string[] = [];
  log.setSinks([{ write: (level: Level, line: string) => void (level === 'err' || level === 'warning' ? errors.push(line) : undefined) }]);
  const writes: number[] = [];
  const loads: number[] = [];
  const cpu = { write: [] as number[], load: [] as number[] };
  let size = 0;
  try {
    for (let run = 0; run < RUNS; run++) {
      let started = performance.now();
      let cpuStarted = process.cpuUsage();
      new SnapshotKeeper(file, store, { clock: () => now, log, intervalMs: 0 }).save('bench');
      writes.push(performance.now() - started);
      cpu.write.push(cpuMs(process.cpuUsage(cpuStarted)));
      size = fs.statSync(file).size;
      const fresh = new SlabStore({ capacity: Math.max(SESSIONS, 64) });
      started = performance.now();
      cpuStarted = process.cpuUsage();
      const loaded = new SnapshotKeeper(file, fresh, { clock: () => now + 1, log, intervalMs: 0 }).load();
      loads.push(performance.now() - started);
      cpu.load.push(cpuMs(process.cpuUsage(cpuStarted)));
      if (loaded.loaded !== SESSIONS || errors.length > 0) throw new Error(`loaded ${loaded.loaded} of ${SESSIONS}: ${errors.join('; ')}`);
    }
    // The load without the store: read, check, and walk every session (what the snapshot code
    // costs; the rest of a load is the store's add).
    new SnapshotKeeper(file, store, { clock: () => now, log, intervalMs: 0 }).save('bench');
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    const read = readSnapshotFile(file, { now: new Date(now) });
    let walked = 0;
    if (read.kind === 'ok') for (const session of read.sessions) walked += session.id.length > 0 ? 1 : 0;
    const readMs = performance.now() - started;
    const readCpu = cpuMs(process.cpuUsage(cpuStarted));
    if (walked !== SESSIONS) throw new Error(`read back ${walked} of ${SESSIONS}`);
    // One row per goal: wall time (what a restart waits) and CPU time (what the machine's other
    // load cannot inflate), each against the goal.
    const verdict = (ms: number): string => (ms < GOAL_MS ? 'ok' : 'OVER');
    const row = (what: string, wall: number[], cpuTimes: number[]): string =>
      `${where.padEnd(10)} ${what} ${SESSIONS.toLocaleString('en-US')} sessions (${(size / 1e6).toFixed(0)} MB): ` +
      `wall ${median(wall).toFixed(0)} ms, cpu ${median(cpuTimes).toFixed(0)} ms; goal < ${GOAL_MS} ms: wall ${verdict(median(wall))}, cpu ${verdict(median(cpuTimes))}` +
      `  [runs wall ${wall.map((w) => w.toFixed(0)).join('/')}, cpu ${cpuTimes.map((c) => c.toFixed(0)).join('/')}]`;
    console.log(row('write', writes, cpu.write));
    console.log(row('load ', loads, cpu.load));
    console.log(`${where.padEnd(10)} of the load: read+check+walk without the store ${readMs.toFixed(0)} ms (cpu ${readCpu.toFixed(0)} ms)`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const now = Date.now();
  const started = performance.now();
  const store = filledStore(now);
  console.log(`snapshot bench: node ${process.version}, ${os.cpus().length} CPU(s), store filled in ${(performance.now() - started).toFixed(0)} ms; median of ${RUNS} runs`);
  const places = ['/dev/shm', os.tmpdir()].filter((p, i, all) => fs.existsSync(p) && all.indexOf(p) === i);
  for (const where of places) await measure(where, store, now);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
