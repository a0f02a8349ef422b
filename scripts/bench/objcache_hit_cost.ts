// What a hit costs the server, apart from the client and the network (objcache_bench.ts):
//   - in process: ObjectCache.produce of a stored entry timed alone (key over the compiler
//     identity, argv and the compressed source, the disk read, the entry's check), on the
//     daemon's own code with a real disk tier and the real compiler;
//   - the daemon's CPU per hit (measureHits): its CPU (the cgroup's, else utime + stime from
//     /proc/PID/stat, every thread) over many hits of one raw request, divided by their number:
//     everything it does for a job (accept, read, key, read the entry, answer, log). In rounds,
//     protocols 2 and 3 interleaved, after a warm-up: V8 compiles the hit path in the background
//     over the first thousand or two hits (measured here in blocks of 200 after a start: 1.54,
//     1.09, 0.85 ... 0.45 ms per protocol-2 hit by the tenth block), and a farm's daemon serves
//     all day; a round that counted that compiling would measure the JIT, not the hit.

import fs from 'node:fs/promises';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { openObjectCache } from '../../src/compile/object_cache/open_object_cache';
import type { CacheEntry } from '../../src/compile/object_cache/entry_codec';
import type { JobKeyInput } from '../../src/compile/object_cache/object_cache';
import net from 'node:net';
import { createLogger } from '../../src/log/index';
import { compressLzo } from '../../src/compile/wire/lzo';

const exec = promisify(execFile);
/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS = 100;

export interface Spread { readonly median: number; readonly min: number; readonly max: number; readonly p90: number }

export function spread(values: readonly number[]): Spread {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  const median = s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, p90: at(0.9) };
}

/**
 * ms of produce() per hit of `doti` (compiled once for real, then answered `n` times from the disk
 * tier), and this process's CPU ms per hit over them (which a loaded machine does not inflate).
 */
export async function timeCacheStep(work: string, doti: Buffer, n: number): Promise<{ readonly times: number[]; readonly cpuMs: number }> {
  const dir = path.join(work, 'step-cache');
  const log = createLogger('objcache-bench', { level: 'emerg' });
  const cache = await openObjectCache({ dir, maxBytes: 1 << 30, maxEntryBytes: 64 << 20 }, log);
  if (cache === undefined) throw new Error(`no cache tier in ${dir}`);
  const tmpDir = path.join(work, 'tmp');
  // As the daemon keys a protocol-2 job: the .i as the client sent it, LZO-compressed.
  const input: JobKeyInput = { program: 'gcc', protocol: 2, argv: ['gcc', '-O2', '-c', 'distccd-input.i', '-o', 'distccd-output.o'], cwd: tmpDir, sourceLzo: compressLzo(doti) };
  const source = path.join(work, 'step.i');
  await fs.writeFile(source, doti);
  await exec('gcc', ['-O2', '-c', source, '-o', path.join(work, 'step.o')]);
  const object = await fs.readFile(path.join(work, 'step.o'));
  let stored: Promise<void> | undefined;
  const context = {
    env: process.env, tmpDir, onState: () => undefined,
    entryOf: (entry: CacheEntry) => entry, answer: (entry: CacheEntry) => entry,
    onStoring: (written: Promise<void>) => void (stored = written),
  };
  await cache.produce(input, async () => ({ object, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) }), context);
  await stored;
  const times: number[] = [];
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await cache.produce(input, () => Promise.reject(new Error('a miss: the entry was stored')), context);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const cpu = process.cpuUsage(cpuBefore);
  await cache.close();
  return { times, cpuMs: (cpu.user + cpu.system) / 1000 / n };
}

/**
 * CPU ms per job of the cache's own work on a miss (key, lookup in the disk tier, the entry
 * encoded and written), in process over `n` jobs of distinct keys whose compile answers at once:
 * what the cache adds to a cold build, apart from the compile, and far less moved by other load
 * than two whole builds are. `input(i)` is the key input of job i (each its own key).
 */
export async function timeMissOverhead(work: string, object: Buffer, n: number, input: (i: number) => JobKeyInput): Promise<number> {
  const dir = path.join(work, `miss-cache-${input(0).protocol}`);
  const log = createLogger('objcache-bench', { level: 'emerg' });
  const cache = await openObjectCache({ dir, maxBytes: 1 << 30, maxEntryBytes: 64 << 20 }, log);
  if (cache === undefined) throw new Error(`no cache tier in ${dir}`);
  const tmpDir = path.join(work, 'tmp');
  const entry: CacheEntry = { object, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  let stored: Promise<void> | undefined;
  const context = {
    env: process.env, tmpDir, onState: () => undefined,
    entryOf: (e: CacheEntry) => e, answer: (e: CacheEntry) => e,
    onStoring: (written: Promise<void>) => void (stored = written),
  };
  // The compiler's identity is worked out at the first job (a process per driver): not timed.
  await cache.keyOf(input(-1), context);
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    stored = undefined;
    await cache.produce(input(i), async () => entry, context);
    await stored;
  }
  const cpu = process.cpuUsage(cpuBefore);
  await cache.close();
  return (cpu.user + cpu.system) / 1000 / n;
}

/** CPU ms (user + system) the process `pid` has used so far, from /proc/PID/stat. */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name (which may hold spaces) start at state, field 3: utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS;
}

function header(token: string, n: number): Buffer {
  return Buffer.from(token + n.toString(16).padStart(8, '0'), 'latin1');
}

function text(token: string, value: string): Buffer[] {
  return [header(token, Buffer.byteLength(value)), Buffer.from(value)];
}

/** A protocol-2 request as the distcc client sends it with `,lzo`: the .i LZO-compressed. */
export function protocol2Request(argv: readonly string[], doti: Buffer): Buffer {
  const packed = compressLzo(doti);
  return Buffer.concat([header('DIST', 2), header('ARGC', argv.length), ...argv.flatMap((a) => text('ARGV', a)), header('DOTI', packed.length), packed]);
}

/** A protocol-3 request as the pump client sends it: CDIR, argv, then every file, LZO-compressed, by absolute name. */
export function protocol3Request(argv: readonly string[], cwd: string, files: readonly { readonly name: string; readonly body: Buffer }[]): Buffer {
  const parts = [header('DIST', 3), ...text('CDIR', cwd), header('ARGC', argv.length), ...argv.flatMap((a) => text('ARGV', a)), header('NFIL', files.length)];
  for (const file of files) {
    const packed = compressLzo(file.body);
    parts.push(...text('NAME', file.name), header('FILE', packed.length), packed);
  }
  return Buffer.concat(parts);
}

/** One job on a fresh connection; resolves with its round trip (ms) once the server closes, rejects unless it answered exit 0. */
export async function rawJob(port: number, request: Buffer): Promise<number> {
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (d) => chunks.push(d));
    s.once('error', reject);
    s.once('close', () => (/^DONE0000000[0-3]STAT00000000/.test(Buffer.concat(chunks).toString('latin1', 0, 24)) ? resolve() : reject(new Error('job failed'))));
  });
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export interface HitRounds {
  /** By meter, then protocol: the daemon's CPU ms per hit, one figure per round. */
  readonly cpuPerHit: Record<string, Record<2 | 3, number[]>>;
  /** By protocol: every measured hit's round trip, ms. */
  readonly roundTrips: Record<2 | 3, number[]>;
}

/**
 * The daemon's CPU per hit by each of `meters` (each gives the CPU ms used so far), `rounds`
 * rounds of `hits` hits of each request, protocols interleaved and their order alternating by
 * round, after `warmup` unmeasured hits of each (see the top of this file). Every request must
 * already have its entry.
 */
export async function measureHits(port: number, requests: Record<2 | 3, Buffer>, options: { readonly warmup: number; readonly hits: number; readonly rounds: number; readonly meters: Record<string, () => Promise<number>> }): Promise<HitRounds> {
  const protocols = [2, 3] as const;
  for (let i = 0; i < options.warmup; i++) for (const p of protocols) await rawJob(port, requests[p]);
  const meters = Object.entries(options.meters);
  const cpuPerHit: Record<string, Record<2 | 3, number[]>> = Object.fromEntries(meters.map(([name]) => [name, { 2: [], 3: [] }]));
  const roundTrips: Record<2 | 3, number[]> = { 2: [], 3: [] };
  const read = (): Promise<number[]> => Promise.all(meters.map(([, meter]) => meter()));
  for (let round = 0; round < options.rounds; round++) {
    for (const p of round % 2 === 0 ? protocols : ([...protocols].reverse() as (2 | 3)[])) {
      const before = await read();
      for (let i = 0; i < options.hits; i++) roundTrips[p].push(await rawJob(port, requests[p]));
      const after = await read();
      meters.forEach(([name], i) => cpuPerHit[name]![p].push((after[i]! - before[i]!) / options.hits));
    }
  }
  return { cpuPerHit, roundTrips };
}
