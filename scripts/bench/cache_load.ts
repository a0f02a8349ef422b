// The cache bench's load generator: scripts/bench/cache_load.c, compiled once per source version
// into the bench's cache dir (outside the repo), run pinned to the load CPU.

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { track, type LoadTarget } from './cache_targets';

export type LoadOp = 'ADD' | 'GET' | 'HAVE' | 'REMOVE' | 'CONNECT_GET' | 'FILL' | 'RESTORE';

export interface LoadResult {
  readonly ops: number;
  readonly ms: number;
  /** The generator's own CPU time: near `ms` means the generator, not the server, was the limit. */
  readonly cpuMs: number;
  readonly nextBase: number;
  readonly notok: number;
}

export interface LoadRun {
  readonly target: LoadTarget;
  readonly op: LoadOp;
  readonly clients: number;
  readonly ms: number;
  /** Ids 0..ids-1 exist (GET/HAVE pick among them; FILL adds them). */
  readonly ids: number;
  readonly size: number;
  /** First id ADD stores and REMOVE deletes (REMOVE's ids are scattered: see cache_load.c); for
   * RESTORE, the first of a REMOVE run's ids to add back. */
  readonly base: number;
  /** RESTORE only: where that REMOVE run stopped (its nextBase). */
  readonly end?: number;
  /** FILL only: requests each client keeps outstanding (default 1). */
  readonly depth?: number;
}

/** Compiles the generator into `cacheDir` unless this version is there; returns its path. */
export function buildLoadGenerator(cacheDir: string): string {
  const source = path.join(__dirname, '../../../scripts/bench/cache_load.c');
  const text = fs.readFileSync(source);
  const binary = path.join(cacheDir, `cache_load-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`);
  if (!fs.existsSync(binary)) {
    const tmp = `${binary}.${process.pid}`;
    execFileSync('cc', ['-O2', '-o', tmp, source], { stdio: 'inherit' });
    fs.renameSync(tmp, binary);
  }
  return binary;
}

export function runLoad(binary: string, cpus: string, run: LoadRun): Promise<LoadResult> {
  const argv = [binary, run.target, run.op, String(run.clients), String(run.ms), String(run.ids), String(run.size), String(run.base), String(run.depth ?? 1), String(run.end ?? 0)];
  return new Promise((resolve, reject) => {
    const child = track(spawn('taskset', ['-c', cpus, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim()) as LoadResult) : reject(new Error(`load generator exited ${code}: ${err.trim()}`))));
  });
}
