// `npm run bench -- objcache`: the object cache on a generated tree of C files (a few hundred
// lines each, system headers, -O2), built with make -j4 through the real distcc client in
// protocol 2 (`,lzo`) and through the pump client in protocol 3 (`,cpp,lzo`; an include server
// per tree started once, `pump --startup`, so that no build's time holds its start and stop), side by side in one
// run against Debian's C distccd, every server with --jobs 4, the same client environment, TMPDIR
// and log level, logging to a file:
//   C distccd         (no cache, no sandbox)
//   ours off          --no-cache --sandbox=off: like for like with C
//   ours off boxed    --no-cache, the sandbox as by default (--sandbox=auto): what the sandbox costs
//   ours cache cold   the cache on, emptied first, sandbox auto: against "ours off boxed", what the cache costs a cold build
//   ours warm         the same daemon again after `make clean`, every object in the cache
//   ours warm via Redis  a second daemon (B) with an empty disk cache that shares only a Redis
//                     (Debian's redis-server on a loopback port) with a daemon (A) that built the
//                     tree cold first: B's wall, its hits, and the ratio against C cold
// --rounds N (default 3) rounds, the order rotating every round; each row prints the median and
// the spread of wall time and of the server's CPU (the daemon and every compiler it ran, from
// cgroup accounting). Then --rounds pairs of cold builds, "ours off boxed" and "ours cache cold"
// at the same time, each make on its own copy of the tree (swapped every pair), so that both meet
// the same machine: one after the other, the other load of a shared machine moved a build's CPU
// by up to 10%, five times the 2% the goal is about. Below the table, one line per goal of issue
// 16 with the goal beside the figure: warm vs C (wall), what the cache costs a cold build (cache
// cold against cache off, pair by pair, as the server's CPU and as wall time, with the spread;
// the rotation's figures on the next line, for reference), a hit's CPU. Each server runs in a cgroup of its own (cpu_groups.ts), which also makes it
// one scheduling group: without it the kernel's autogroup gave ours, whose compilers each start
// a session, several CPU shares to C's one on a loaded machine, and C's makes ran 1.5-3x slower.
// Then what a hit costs the server (objcache_hit_cost.ts): its CPU per hit (its cgroup's, else
// /proc/PID/stat) over many raw hits of one protocol-2 and one protocol-3 request, after a
// warm-up (--hit-warmup N of each, default 1500: the JIT's compiling is not a hit's cost), in
// --rounds rounds of --hits N each (default 1000, --quick 500), the protocols interleaved; the
// in-process time of the cache step alone, and the summary line's time for those hits, apart
// from the client's round trip. Loopback only, free ports, every
// server stopped by PID, the work dir removed. The load average is printed with the table.
// --hits-only: only what a hit costs (the cache daemon alone, no builds), for a quick figure.
// Usage: node dist/scripts/bench/objcache_bench.js [--quick] [--files N] [--rounds N] [--hits N] [--hit-warmup N] [--hits-only]

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, onFreePort } from '../../test/support/free_port';
import { RedisServer } from '../../test/support/redis';
import { realPump, runPump, startIncludeServer, type IncludeServer } from '../../test/support/real_pump';
import { stopServer, stopServersOnSignal, waitForPort } from './bench_servers';
import { CpuGroups } from './cpu_groups';
import { measureHits, processCpuMs, protocol2Request, protocol3Request, rawJob, spread, timeCacheStep, timeMissOverhead, type Spread } from './objcache_hit_cost';
import type { JobKeyInput } from '../../src/compile/object_cache/object_cache';
import { compressLzo } from '../../src/compile/wire/lzo';

const exec = promisify(execFile);
const REPO = path.resolve(__dirname, '../../..');
const OURS = path.join(REPO, 'dist/src/cli/distccd.js');
const QUICK = process.argv.includes('--quick');
const HITS_ONLY = process.argv.includes('--hits-only');
function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}
const FILES = argValue('--files', QUICK ? 40 : 200);
const ROUNDS = argValue('--rounds', 3);
/** Measured hits per protocol per round, and unmeasured ones first (see objcache_hit_cost.ts). */
const HIT_JOBS = argValue('--hits', QUICK ? 500 : 1000);
const HIT_WARMUP = argValue('--hit-warmup', 1500);

type Name = 'c' | 'off' | 'boxed' | 'cache';
/** The two daemons that share a Redis (A fills it, B builds warm from it), outside the rounds' rotation. */
type RedisName = 'ra' | 'rb';
const LABEL: Record<Name, string> = { c: 'C distccd', off: 'ours off', boxed: 'ours off boxed', cache: 'ours cache cold' };
const EXTRA: Record<Name | RedisName, readonly string[]> = { c: [], off: ['--no-cache', '--sandbox=off'], boxed: ['--no-cache'], cache: [], ra: [], rb: [] };
interface Server { readonly name: Name | RedisName; readonly port: number; readonly child: ChildProcess; readonly log: string }

/** The goals of issue 16's benchmark, printed beside the figures. */
const GOAL = { warmVsC: 3, coldCostPct: 2, hitMs: 1 } as const;

function verdict(met: boolean): string {
  return met ? 'met' : 'NOT met';
}

async function startServer(name: Name | RedisName, work: string, groups: CpuGroups | undefined, redisArgs: readonly string[] = []): Promise<Server> {
  const port = await freePort();
  const log = path.join(work, `${name}.log`);
  await fs.writeFile(log, '');
  await fs.chmod(log, 0o666); // run as root, both daemons drop to their account
  const args = ['--daemon', '--no-detach', '--listen', '127.0.0.1', '--port', String(port), '--allow', '127.0.0.1', '--jobs', '4', '--log-file', log];
  const cache = name === 'cache' ? ['--cache-dir', path.join(work, 'cache')] : name === 'ra' || name === 'rb' ? ['--cache-dir', path.join(work, `cache-${name}`), ...redisArgs] : [];
  const [file, argv] = name === 'c' ? ['/usr/bin/distccd', args] : [process.execPath, [OURS, ...args, ...EXTRA[name], ...cache]];
  const [cmd, cmdArgs] = groups === undefined ? [file, argv] : groups.wrap(name, file, argv);
  const child = spawn(cmd, cmdArgs, { stdio: 'ignore', env: { ...process.env, TMPDIR: path.join(work, 'tmp') } });
  await waitForPort(port, child, 15_000);
  return { name, port, child, log };
}

/** What the daemon's start-up log says of the sandbox its compilers run in. */
async function sandboxOf(server: Server): Promise<string> {
  if (server.name === 'c') return 'none (C has no sandbox)';
  const log = await fs.readFile(server.log, 'utf8');
  if (/sandbox off \(--sandbox=off\)/.test(log)) return 'off (--sandbox=off)';
  if (/SANDBOX UNAVAILABLE/.test(log)) return 'auto, bwrap UNAVAILABLE: unconfined';
  // The line's jobs= says where jobs run: a sandbox host per compiler, a bwrap each, or the host program's one-shot mode each.
  const line = /\bsandbox mode=auto\b.*?\bjobs=(\S+)/.exec(log);
  return line === null ? 'unknown (no sandbox line in the log)' : `auto: ${line[1]!}`;
}

/** A C file of about 300 lines: system headers, loops, string and math work for -O2. */
function sourceOf(i: number): string {
  const lines = ['#include <stdio.h>', '#include <stdlib.h>', '#include <string.h>', '#include <math.h>', '#include <ctype.h>', ''];
  for (let f = 0; f < 24; f++) {
    lines.push(
      `static double calc_${i}_${f}(const double *v, size_t n) {`, '  double acc = 0.0;',
      '  for (size_t k = 0; k < n; k++) {', `    double x = v[k] * ${f + 1}.5 + ${i};`,
      '    if (x > 100.0) acc += sqrt(x); else acc -= sin(x) * cos(x);', '  }', '  return acc;', '}',
      `int text_${i}_${f}(char *out, size_t len, const char *in) {`, '  size_t n = strlen(in);',
      '  for (size_t k = 0; k < n && k + 1 < len; k++) out[k] = (char)toupper((unsigned char)in[k]);',
      `  return snprintf(out + (n < len ? n : 0), len > n ? len - n : 0, "%d", ${f});`, '}',
    );
  }
  lines.push(`double entry_${i}(void) {`, '  double v[64];', '  for (int k = 0; k < 64; k++) v[k] = rand() / (double)RAND_MAX;', '  double s = 0;');
  for (let f = 0; f < 24; f++) lines.push(`  s += calc_${i}_${f}(v, 64);`);
  lines.push('  char b[128];', `  s += text_${i}_0(b, sizeof b, "objcache");`, '  return s;', '}', '');
  return lines.join('\n');
}

/**
 * A tree a make runs in, the client's home (DISTCC_DIR) for it (two makes at once each have
 * their own), and its include server for protocol 3.
 */
interface Tree { readonly src: string; readonly home: string; readonly includeServer?: IncludeServer }

/**
 * The generated tree, and two copies of it for the paired builds (names of one length: the
 * preprocessed sources, which carry the path, are as long in both).
 */
async function prepare(work: string): Promise<{ readonly main: Tree; readonly twins: readonly [Tree, Tree] }> {
  await fs.chmod(work, 0o755);
  for (const dir of ['tmp', 'home', 'src', 'home-a', 'home-b']) await fs.mkdir(path.join(work, dir));
  await fs.chmod(path.join(work, 'tmp'), 0o1777);
  const src = path.join(work, 'src');
  const objs: string[] = [];
  for (let i = 0; i < FILES; i++) {
    await fs.writeFile(path.join(src, `f${i}.c`), sourceOf(i));
    objs.push(`f${i}.o`);
  }
  await fs.writeFile(path.join(src, 'Makefile'), `all: ${objs.join(' ')}\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\nclean:\n\trm -f *.o\n`);
  const twin = async (name: string): Promise<Tree> => {
    await fs.cp(src, path.join(work, `src-${name}`), { recursive: true });
    return { src: path.join(work, `src-${name}`), home: path.join(work, `home-${name}`) };
  };
  return { main: { src, home: path.join(work, 'home') }, twins: [await twin('a'), await twin('b')] };
}

function clientEnv(home: string, hosts: string): NodeJS.ProcessEnv {
  return { ...process.env, HOME: home, DISTCC_DIR: home, DISTCC_HOSTS: hosts, DISTCC_FALLBACK: '0', DISTCC_BACKOFF_PERIOD: '0', DISTCC_SKIP_LOCAL_RETRY: '1' };
}

/** One `make -j4` from clean, timed; protocol 2 through Debian's distcc, 3 through the pump client. */
async function build({ src, home, includeServer }: Tree, server: Server, protocol: 2 | 3): Promise<number> {
  await exec('make', ['-s', '-C', src, 'clean']);
  const start = process.hrtime.bigint();
  if (protocol === 2) {
    await exec('make', ['-s', '-j4', '-C', src, 'CC=distcc gcc'], { env: clientEnv(home, `127.0.0.1:${server.port}/4,lzo`), maxBuffer: 16 << 20 });
  } else {
    const { distcc } = await realPump();
    const r = await runPump(['make', '-s', '-j4', '-C', src, `CC=${distcc} gcc`], { cwd: src, port: server.port, home, includeServer });
    if (r.code !== 0) throw new Error(`pump make failed (${r.code}): ${r.stderr.slice(-2000)}`);
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const objects = (await fs.readdir(src)).filter((f) => f.endsWith('.o')).length;
  if (objects !== FILES) throw new Error(`${server.name} built ${objects} of ${FILES} objects`);
  return ms;
}

async function emptyCache(dir: string): Promise<void> {
  for (const sub of await fs.readdir(dir).catch(() => [] as string[])) if (/^[0-9a-f]{2}$/.test(sub)) await fs.rm(path.join(dir, sub), { recursive: true, force: true });
}

/** `daemon`: the daemon process's own CPU ms (its threads, not the compilers it ran), where the cache's work runs. */
interface Sample { readonly ms: number; readonly cpu?: number; readonly daemon: number }

/** One measured build on `server`, with the server's CPU (daemon and compilers) when groups account it, and the daemon's own. */
async function measured(tree: Tree, server: Server, protocol: 2 | 3, groups: CpuGroups | undefined): Promise<Sample> {
  const before = groups?.usedMs(server.name);
  const daemonBefore = await processCpuMs(server.child.pid!);
  const ms = await build(tree, server, protocol);
  return { ms, cpu: before === undefined ? undefined : groups!.usedMs(server.name) - before, daemon: (await processCpuMs(server.child.pid!)) - daemonBefore };
}

/** How many of the summary lines `log` gained after `from` (chars) say `cache:hit`, once `jobs` lines are there (5 s at most: the log is written asynchronously). */
async function hitsLogged(log: string, from: number, jobs: number): Promise<number> {
  let lines: string[] = [];
  for (let i = 0; i < 100; i++) {
    lines = (await fs.readFile(log, 'utf8')).slice(from).split('\n').filter((l) => / cache:\w+$/.test(l));
    if (lines.length >= jobs) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return lines.filter((l) => l.endsWith(' cache:hit')).length;
}

/**
 * Builds warm through `b`, whose disk cache is emptied before each build, from the Redis that `a`
 * filled with one cold build: what a second daemon of a farm gets from the shared tier alone.
 */
async function warmViaRedis(work: string, tree: Tree, servers: { readonly a: Server; readonly b: Server }, redis: RedisServer, protocol: 2 | 3, groups: CpuGroups | undefined): Promise<{ readonly samples: Sample[]; readonly hits: number[] }> {
  await redis.cli(['flushall']);
  await emptyCache(path.join(work, 'cache-ra'));
  await build(tree, servers.a, protocol);
  // A stores each entry after its answer: wait (10 s at most) until Redis holds one per file.
  for (let i = 0; i < 200 && Number(await redis.cli(['dbsize'])) < FILES; i++) await new Promise((r) => setTimeout(r, 50));
  const samples: Sample[] = [];
  const hits: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await emptyCache(path.join(work, 'cache-rb'));
    const from = (await fs.readFile(servers.b.log, 'utf8')).length;
    samples.push(await measured(tree, servers.b, protocol, groups));
    hits.push(await hitsLogged(servers.b.log, from, FILES));
  }
  return { samples, hits };
}

/** What the pump client sends for `file` (in `src`): the source and every header `gcc -M` names, by absolute name. */
async function pumpFilesOf(src: string, file: string): Promise<{ readonly name: string; readonly body: Buffer }[]> {
  const names = (await exec('gcc', ['-M', file], { cwd: src })).stdout.replace(/\\\n/g, ' ').split(/\s+/).slice(1).filter((f) => f !== '');
  return Promise.all(names.map(async (name) => ({ name: path.resolve(src, name), body: await fs.readFile(path.resolve(src, name)) })));
}

/**
 * The cache's own CPU per cold job (timeMissOverhead), by protocol, on f0.c: protocol 2 keys the
 * compressed .i, protocol 3 the source and every header `gcc -M` names (what a pump job sends),
 * compressed as sent, and scans the tree for the clock macros as a pump job's miss does (the
 * bodies inflated for the compiler, which a job without the cache does too).
 */
async function missOverheads(work: string, src: string): Promise<Record<2 | 3, number>> {
  const file = path.join(src, 'f0.c');
  const doti = Buffer.from((await exec('gcc', ['-E', file], { maxBuffer: 16 << 20 })).stdout);
  await exec('gcc', ['-O2', '-c', file, '-o', path.join(work, 'f0-miss.o')]);
  const object = await fs.readFile(path.join(work, 'f0-miss.o'));
  const tmpDir = path.join(work, 'tmp');
  const packed = compressLzo(doti);
  const argv = (i: number): string[] => ['gcc', '-O2', `-DBENCH_JOB=${i}`, '-c', 'distccd-input.i', '-o', 'distccd-output.o'];
  // Each job its own source (as in a build: f0.c with a line of its own), the same headers.
  const [source, ...headers] = (await pumpFilesOf(src, file)).map((f) => ({ kind: 'file' as const, ...f }));
  const sentHeaders = headers.map((f) => ({ ...f, body: compressLzo(f.body), lzo: true }));
  const jobs = 200;
  const trees = Array.from({ length: jobs + 1 }, (_, i) => {
    const own = { ...source!, body: Buffer.concat([source!.body, Buffer.from(`/* job ${i} */\n`)]) };
    return { sent: [{ ...own, body: compressLzo(own.body), lzo: true }, ...sentHeaders], content: [own, ...headers].map((f) => f.body) };
  });
  const p2 = (i: number): JobKeyInput => ({ program: 'gcc', protocol: 2, argv: argv(i), cwd: tmpDir, sourceLzo: packed });
  const p3 = (i: number): JobKeyInput => {
    const tree = trees[i + 1]!;
    return { program: 'gcc', protocol: 3, argv: argv(i), cwd: src, files: tree.sent, contentOf: (index) => tree.content[index]! };
  };
  return { 2: await timeMissOverhead(work, object, jobs, p2), 3: await timeMissOverhead(work, object, jobs, p3) };
}

function cell(values: readonly number[]): string {
  if (values.length === 0) return 'n/a';
  const s = spread(values);
  return `${s.median.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})`;
}

async function main(): Promise<void> {
  const names: Name[] = ['c', 'off', 'boxed', 'cache'];
  const groups = CpuGroups.open([...names, 'ra', 'rb']);
  console.log(groups === undefined
    ? 'WARNING: no cgroups (needs root): no server CPU, and the kernel\'s autogroup may favour ours (each of its compilers is a session)'
    : `each server in its own cgroup: CPU accounted${groups.scheduled ? ' and scheduled as one group' : ' (not a scheduling group here: autogroup may favour ours)'}`);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-objbench-'));
  const servers: Server[] = [];
  let redis: RedisServer | undefined;
  const includeStops: Array<() => Promise<unknown>> = [];
  stopServersOnSignal(servers, work, async () => {
    for (const stop of includeStops) await stop();
    await redis?.stop();
    groups?.close();
  });
  try {
    const prepared = await prepare(work);
    if (!HITS_ONLY) await realPump();
    // One include server per tree, started once: `pump make` starts and stops one for every
    // build, which waits in polls of a second and put whole seconds into each protocol-3 wall time.
    const pumped = async (tree: Tree): Promise<Tree> => (HITS_ONLY ? tree : { ...tree, includeServer: await startIncludeServer({ after: (stop) => void includeStops.push(stop) }, tree.home) });
    const main = await pumped(prepared.main);
    const twins = [await pumped(prepared.twins[0]), await pumped(prepared.twins[1])] as const;
    const src = main.src;
    const cache = path.join(work, 'cache');
    for (const name of HITS_ONLY ? (['cache'] as const) : names) servers.push(await startServer(name, work, groups));
    let a: Server | undefined;
    let b: Server | undefined;
    if (!HITS_ONLY) {
      // The farm's Redis, on a loopback port (the daemons drop root: the unix socket is root's alone).
      redis = await onFreePort((port) => RedisServer.start(path.join(work, 'redis'), port));
      const secret = path.join(work, 'farm.secret');
      await fs.writeFile(secret, 'the objcache bench farm secret, 32+ bytes\n', { mode: 0o644 });
      const redisArgs = ['--cache-redis', redis.tcpUrl, '--cache-secret-file', secret];
      servers.push((a = await startServer('ra', work, groups, redisArgs)));
      servers.push((b = await startServer('rb', work, groups, redisArgs)));
    }
    const byName = new Map(servers.map((s) => [s.name, s]));
    const table: string[] = [];
    const summary: string[] = [];
    const overhead = HITS_ONLY ? undefined : await missOverheads(work, src);
    for (const protocol of HITS_ONLY ? [] : ([2, 3] as const)) {
      // One unmeasured build each: page cache, and the daemons have run their job path once.
      for (const name of names) await build(main, byName.get(name)!, protocol);
      const samples = new Map<Name | 'warm' | 'redis', Sample[]>([...names, 'warm' as const].map((n) => [n, []]));
      for (let round = 0; round < ROUNDS; round++) {
        // The order rotates every round, so drift on the machine hits every server alike.
        for (let i = 0; i < names.length; i++) {
          const name = names[(i + round) % names.length]!;
          const s = byName.get(name)!;
          if (name === 'cache') await emptyCache(cache);
          samples.get(name)!.push(await measured(main, s, protocol, groups));
          if (name === 'cache') samples.get('warm')!.push(await measured(main, s, protocol, groups));
        }
        console.log(`p${protocol} round ${round + 1}/${ROUNDS}: ${[...samples].map(([n, v]) => `${n} ${v[v.length - 1]!.ms.toFixed(0)}`).join(', ')} ms`);
      }
      // The cache's cost to a cold build, as the goal asks: cache cold and off boxed built at the
      // same time, each make on its own copy of the tree (swapped every round), so that both
      // meet the same machine. Built one after the other (the rotation above), the other load
      // of a shared machine moved a build's server CPU by up to 10% from one build to the next
      // (the compilers' CPU, which the cache does not touch: they run the same commands either
      // way), five times the 2% to be seen; at the same time the pair differed by 1-3%.
      const pairs: Array<{ readonly boxed: Sample; readonly cache: Sample }> = [];
      for (let round = 0; round < ROUNDS; round++) {
        await emptyCache(cache);
        const [forBoxed, forCache] = round % 2 === 0 ? twins : [twins[1], twins[0]];
        const [boxed, cold] = await Promise.all([measured(forBoxed, byName.get('boxed')!, protocol, groups), measured(forCache, byName.get('cache')!, protocol, groups)]);
        pairs.push({ boxed, cache: cold });
        console.log(`p${protocol} paired round ${round + 1}/${ROUNDS} (off boxed and cache cold at once): off boxed ${boxed.ms.toFixed(0)} ms, cache cold ${cold.ms.toFixed(0)} ms`);
      }
      const shared = await warmViaRedis(work, main, { a: a!, b: b! }, redis!, protocol, groups);
      samples.set('redis', shared.samples);
      const wall = (n: Name | 'warm' | 'redis'): number[] => samples.get(n)!.map((x) => x.ms);
      const cpu = (n: Name | 'warm' | 'redis'): number[] => samples.get(n)!.flatMap((x) => (x.cpu === undefined ? [] : [x.cpu]));
      const c = spread(wall('c')).median;
      const sandboxes = new Map(await Promise.all(servers.map(async (s) => [s.name, await sandboxOf(s)] as const)));
      for (const n of [...names, 'warm' as const, 'redis' as const]) {
        const label = n === 'warm' ? 'ours warm' : n === 'redis' ? 'ours warm B/Redis' : LABEL[n];
        const sandbox = sandboxes.get(n === 'warm' ? 'cache' : n === 'redis' ? 'rb' : n)!;
        table.push(`p${protocol} ${label.padEnd(16)} ${sandbox.padEnd(24)} ${cell(wall(n)).padStart(20)} ${(spread(wall(n)).median / c).toFixed(2).padStart(6)} ${cell(cpu(n)).padStart(20)}`);
      }
      const pct = (v: readonly number[]): string => (v.length === 0 ? 'n/a' : `median ${spread(v).median.toFixed(1)}% (${spread(v).min.toFixed(1)} to ${spread(v).max.toFixed(1)})`);
      /** Cache cold against off boxed, pair by pair, in % of off boxed's figure. */
      const cost = (cold: readonly number[], off: readonly number[]): number[] => cold.map((v, i) => ((v - off[i]!) / off[i]!) * 100);
      const warmX = c / spread(wall('warm')).median;
      summary.push(`p${protocol} goal warm rebuild >= ${GOAL.warmVsC}x faster than C (wall medians, same make): ${warmX.toFixed(2)}x: ${verdict(warmX >= GOAL.warmVsC)}`);
      const pairCpu = (side: 'boxed' | 'cache'): number[] => pairs.flatMap((p) => (p[side].cpu === undefined ? [] : [p[side].cpu!]));
      const cpuCosts = cost(pairCpu('cache'), pairCpu('boxed'));
      const wallCosts = cost(pairs.map((p) => p.cache.ms), pairs.map((p) => p.boxed.ms));
      const cpuCost = cpuCosts.length === 0 ? undefined : spread(cpuCosts).median;
      const wallCost = spread(wallCosts).median;
      summary.push(`p${protocol} goal cache costs a cold build <= ${GOAL.coldCostPct}% against cache off (cache cold vs off boxed, built at the same time on two copies of the tree, ${ROUNDS} pairs): server CPU ${pct(cpuCosts)}: ${cpuCost === undefined ? 'not measured (no cgroups)' : verdict(cpuCost <= GOAL.coldCostPct)}; wall ${pct(wallCosts)}: ${verdict(wallCost <= GOAL.coldCostPct)}`);
      summary.push(`p${protocol}   the same, built one after the other (the rotation above; for reference: the machine's other load moves a build by up to 10%): server CPU ${pct(cost(cpu('cache'), cpu('boxed')))}; wall ${pct(cost(wall('cache'), wall('boxed')))}`);
      // The cache's work runs in the daemon alone (the compilers do the same jobs either way): the
      // daemon's own CPU, cache cold less off boxed, pair by pair, against the off-boxed build's
      // whole server CPU. Steadier than two whole builds' CPU, which the compilers swamp.
      const daemonCosts = cpuCosts.length === 0 ? [] : pairs.map((p) => ((p.cache.daemon - p.boxed.daemon) / p.boxed.cpu!) * 100);
      if (daemonCosts.length > 0) {
        const added = pairs.map((p) => p.cache.daemon - p.boxed.daemon);
        summary.push(`p${protocol} goal cache costs a cold build <= ${GOAL.coldCostPct}%, the daemon's own CPU (/proc/PID/stat, where the cache works; the compilers do the same jobs): cache cold less off boxed ${added.map((v) => v.toFixed(0)).join(' / ')} ms per build = ${pct(daemonCosts)} of the off-boxed build's server CPU: ${verdict(spread(daemonCosts).median <= GOAL.coldCostPct)}`);
      }
      const perJob = cpu('boxed').length === 0 ? undefined : spread(cpu('boxed')).median / FILES;
      if (overhead !== undefined && perJob !== undefined) {
        const share = (overhead[protocol] / perJob) * 100;
        summary.push(`p${protocol} goal cache costs a cold build <= ${GOAL.coldCostPct}%, in process: the cache's work on a miss (key, lookup, entry written) ${overhead[protocol].toFixed(3)} ms CPU per job = ${share.toFixed(2)}% of an off-boxed job's server CPU (${perJob.toFixed(0)} ms): ${verdict(share <= GOAL.coldCostPct)}`);
      }
      const redisX = c / spread(wall('redis')).median;
      summary.push(`p${protocol} warm through a second daemon that shares only the Redis: hits per build ${shared.hits.join(', ')} of ${FILES}; wall median ${spread(wall('redis')).median.toFixed(0)} ms, ${redisX.toFixed(2)}x faster than C cold`);
    }
    // What a hit costs the server: one cached job per protocol, again and again.
    const on = byName.get('cache')!;
    const f0 = path.join(src, 'f0.c');
    const argv = ['gcc', '-O2', '-c', 'f0.c', '-o', 'f0.o'];
    const doti = Buffer.from((await exec('gcc', ['-E', f0], { maxBuffer: 16 << 20 })).stdout);
    const tree = await pumpFilesOf(src, f0);
    const requests = { 2: protocol2Request(argv, doti), 3: protocol3Request(argv, src, tree) } as const;
    for (const request of Object.values(requests)) await rawJob(on.port, request);
    const hitLog = (await fs.readFile(on.log, 'utf8')).length;
    // The daemon process's threads (/proc/PID/stat, in 10 ms ticks), and its cgroup when there is one (to the µs).
    const meters: Record<string, () => Promise<number>> = { process: () => processCpuMs(on.child.pid!) };
    if (groups !== undefined) meters['cgroup'] = async () => groups.usedMs('cache');
    const hits = await measureHits(on.port, requests, { warmup: HIT_WARMUP, hits: HIT_JOBS, rounds: ROUNDS, meters });
    const measuredHits = 2 * HIT_JOBS * ROUNDS;
    // The log is written asynchronously: wait (2 s at most) for the last hit's line.
    const readHits = async (): Promise<string[]> => (await fs.readFile(on.log, 'utf8')).slice(hitLog).split('\n').filter((l) => l.includes('cache:hit'));
    let hitLines = await readHits();
    for (let i = 0; i < 40 && hitLines.length < measuredHits; i++) {
      await new Promise((r) => setTimeout(r, 50));
      hitLines = await readHits();
    }
    const logged = hitLines.slice(-measuredHits).map((l) => Number(/time:(\d+)ms/.exec(l)?.[1] ?? NaN)).filter((v) => !Number.isNaN(v));
    const stepRun = await timeCacheStep(work, doti, HIT_JOBS);
    const step = spread(stepRun.times);
    const log = await fs.readFile(on.log, 'utf8');

    console.log(`\n${FILES} files, make -j4, --jobs 4, ${ROUNDS} rounds; load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs (shared machine)`);
    console.log(`${'build'.padEnd(19)} ${'sandbox'.padEnd(24)} ${'wall ms med (min-max)'.padStart(20)} ${'vs C'.padStart(6)} ${'server CPU ms'.padStart(20)}`);
    for (const line of table) console.log(line);
    for (const line of summary) console.log(line);
    const treeKb = tree.reduce((n, f) => n + f.body.length, 0) / 1024;
    console.log(`\na hit (raw requests of f0.c: protocol 2 ${(doti.length / 1024).toFixed(0)} KB preprocessed, protocol 3 ${tree.length} files of ${treeKb.toFixed(0)} KB; ${HIT_WARMUP} unmeasured hits of each first, then ${ROUNDS} rounds of ${HIT_JOBS} hits per protocol, interleaved; loopback):`);
    for (const p of [2, 3] as const) {
      const perRound = hits.cpuPerHit['process']![p];
      const median = spread(perRound).median;
      const cgroup = hits.cpuPerHit['cgroup']?.[p];
      const also = cgroup === undefined ? '' : `; its cgroup: median ${spread(cgroup).median.toFixed(3)} ms, rounds ${cgroup.map((v) => v.toFixed(3)).join(' / ')}`;
      console.log(`  p${p} goal a hit costs the server < ${GOAL.hitMs} ms: server CPU per hit (the daemon, /proc/PID/stat utime+stime, every thread): median ${median.toFixed(3)} ms, rounds ${perRound.map((v) => v.toFixed(3)).join(' / ')}: ${verdict(median < GOAL.hitMs)}${also}`);
    }
    console.log(`  cache step in process (ObjectCache.produce of a stored protocol-2 entry, disk tier): median ${step.median.toFixed(3)} ms, p90 ${step.p90.toFixed(3)}, min ${step.min.toFixed(3)}, max ${step.max.toFixed(3)}; CPU ${stepRun.cpuMs.toFixed(3)} ms per hit`);
    console.log(`  summary line time: of the measured hits: ${logged.length} lines, mean ${(logged.reduce((a, b) => a + b, 0) / Math.max(1, logged.length)).toFixed(2)} ms, max ${Math.max(...logged)} ms (whole job, whole ms)`);
    for (const p of [2, 3] as const) {
      const trip: Spread = spread(hits.roundTrips[p]);
      console.log(`  p${p} client round trip (connect to close, with the client and the network): median ${trip.median.toFixed(3)} ms, min ${trip.min.toFixed(3)}, p90 ${trip.p90.toFixed(3)}`);
    }
    console.log(`ours-cache log: ${(log.match(/cache:hit/g) ?? []).length} hits, ${(log.match(/cache:miss/g) ?? []).length} misses`);
  } finally {
    for (const stop of includeStops.splice(0)) await stop();
    for (const s of servers) await stopServer(s);
    await redis?.stop();
    groups?.close();
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
});
