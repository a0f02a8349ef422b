// `npm run bench -- snapshot`: how long dc_server takes to write its session snapshot at stop and
// to load it at start, with N sessions (default 1,000,000; goal: under 2 s each). It times the
// real path dc_server runs (SnapshotKeeper over a MemoryStore: entries, encode, write, fsync,
// rename; then read, check, add every session to a fresh store), on tmpfs (/dev/shm, where the
// shipped units keep it: /run) and on the disk of os.tmpdir(). Sessions are 32-byte ids with
// 150 bytes of data (an Apache TLS session is about that size). Not part of `npm test`.
// Usage: node dist/scripts/bench/snapshot_bench.js [--sessions N] [--runs R]

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, type Level } from '../../src/log/index';
import { MemoryStore } from '../../src/cache/stores/memory_store';
import { SnapshotKeeper } from '../../src/cache/snapshot/snapshot_keeper';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const SESSIONS = Number(argValue('--sessions') ?? 1_000_000);
const RUNS = Number(argValue('--runs') ?? 3);
const DATA_BYTES = 150;
const GOAL_MS = 2000;

function filledStore(now: number): MemoryStore {
  const store = new MemoryStore({ capacity: Math.max(SESSIONS, 64) });
  const seed = crypto.randomBytes(32 + DATA_BYTES);
  for (let i = 0; i < SESSIONS; i++) {
    seed.writeUInt32LE(i, 0);
    store.add(now, seed.subarray(0, 32), seed.subarray(32), 300_000 + (i % 1000));
  }
  return store;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(where: string, store: MemoryStore, now: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(where, 'distkit-snapshot-bench-'));
  const file = path.join(dir, 'dc_server.snapshot');
  const log = createLogger('snapshot-bench', { level: 'info' });
  const errors: string[] = [];
  log.setSinks([{ write: (level: Level, line: string) => void (level === 'err' || level === 'warning' ? errors.push(line) : undefined) }]);
  const writes: number[] = [];
  const loads: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      let started = performance.now();
      new SnapshotKeeper(file, store, { clock: () => now, log, intervalMs: 0 }).save('bench');
      writes.push(performance.now() - started);
      const fresh = new MemoryStore({ capacity: Math.max(SESSIONS, 64) });
      started = performance.now();
      const loaded = new SnapshotKeeper(file, fresh, { clock: () => now + 1, log, intervalMs: 0 }).load();
      loads.push(performance.now() - started);
      if (loaded.loaded !== SESSIONS || errors.length > 0) throw new Error(`loaded ${loaded.loaded} of ${SESSIONS}: ${errors.join('; ')}`);
    }
    const size = fs.statSync(file).size;
    const verdict = (ms: number): string => (ms < GOAL_MS ? 'ok' : `OVER the ${GOAL_MS} ms goal`);
    console.log(
      `${where.padEnd(10)} ${SESSIONS.toLocaleString('en-US')} sessions, ${(size / 1e6).toFixed(0)} MB: ` +
        `write ${median(writes).toFixed(0)} ms (${verdict(median(writes))}), load ${median(loads).toFixed(0)} ms (${verdict(median(loads))})` +
        `  [runs: write ${writes.map((w) => w.toFixed(0)).join('/')}, load ${loads.map((l) => l.toFixed(0)).join('/')}]`,
    );
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
