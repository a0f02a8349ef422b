// `npm run bench` for distccd: runs the same workloads, side by side in one run, against Debian's
// C distccd (/usr/bin/distccd), ours (node dist/src/cli/distccd.js) and the Node floor
// (distcc_floor.ts: the least a Node server can do per job), and prints each ours/C and floor/C
// wall-time ratio with min/median/max over several runs (< 1 means faster than C):
//   1. sequential: N trivial compiles one after another through the real distcc client;
//   2. make -j4 of M generated C files with CC="distcc gcc", with the CPU each make cost: the
//      server's (it and every compiler it ran) per job, and the total with the client side, from
//      cgroup accounting when run as root (cpu_groups.ts). With the cores all busy, CPU decides;
//   3. inetd: K compiles over a DISTCC_SSH pipe script that execs `distccd --inetd` locally;
//   4. overhead: the server's own cost per job, a raw protocol-1 request minus the bare compiler
//      on the same .i file.
// Sequential, inetd and overhead jobs alternate between the servers job by job (the order
// reverses every job), so drift on the machine hits all alike; the makes change order every run.
// inetd has no floor: it measures a process start per job, which the floor does not model.
// Loopback only, free ports picked at run time, every server stopped by PID, temp dirs removed.
// Not part of `npm test` (speed is never checked by unit tests). Usage:
//   node dist/scripts/bench/distcc_bench.js [--runs 3] [--quick] [--only sequential,make-j4,inetd,overhead]
//     [--sandbox-row]   also ours with --sandbox=off ("unboxed"): ours vs unboxed is the sandbox's cost
//   (scripts/bench/sandbox_bench.ts measures that cost against its budget, CPU and wall)

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/support/free_port';
import { stopServer, stopServersOnSignal, waitForPort } from './bench_servers';
import { CpuGroups } from './cpu_groups';

const execRaw = promisify(execFile);
/** Every command is bounded: a hung server must fail the bench, not stall it. */
const COMMAND_TIMEOUT_MS = 120_000;
function exec(file: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; maxBuffer?: number } = {}): ReturnType<typeof execRaw> {
  return execRaw(file, args, { timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL', ...options });
}
const REPO = path.resolve(__dirname, '../../..');
const OURS = path.join(REPO, 'dist/src/cli/distccd.js');
const FLOOR = path.join(REPO, 'dist/scripts/bench/distcc_floor.js');
const C_DISTCCD = '/usr/bin/distccd';

/** unboxed: ours with --sandbox=off, beside ours (its default, the sandbox on) when --sandbox-row is given. */
type Kind = 'c' | 'ours' | 'floor' | 'unboxed';
const SANDBOX_ROW = process.argv.includes('--sandbox-row');
const KINDS: readonly Kind[] = SANDBOX_ROW ? ['c', 'ours', 'unboxed', 'floor'] : ['c', 'ours', 'floor'];
interface Server { readonly kind: Kind; readonly port: number; readonly child: ChildProcess }

function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

const QUICK = process.argv.includes('--quick');
/** --only sequential,make-j4: run just these workloads (names as printed). */
const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? new Set((process.argv[i + 1] ?? '').split(',')) : undefined;
})();
const wanted = (name: string): boolean => ONLY === undefined || ONLY.has(name);
const RUNS = argValue('--runs', QUICK ? 1 : 3);
const SEQUENTIAL = QUICK ? 20 : 200;
const MAKE_FILES = QUICK ? 20 : 100;
const INETD_JOBS = QUICK ? 10 : 50;
const OVERHEAD_JOBS = QUICK ? 10 : 50;

/**
 * Run as root, distccd drops to the distcc user: its log file and TMPDIR must be writable by
 * that user, so the log is made world-writable and TMPDIR is a sticky 1777 directory.
 */
export async function openLog(work: string, name: string): Promise<string> {
  const file = path.join(work, name);
  await fs.writeFile(file, '', { flag: 'a' });
  await fs.chmod(file, 0o666);
  return file;
}

async function serverCommand(kind: Kind, work: string, port: number): Promise<[string, string[]]> {
  const tmp = path.join(work, 'tmp');
  if (kind === 'floor') return [process.execPath, [FLOOR, String(port), tmp]];
  const log = await openLog(work, `${kind}-distccd.log`);
  const args = ['--daemon', '--no-detach', '--listen', '127.0.0.1', '--port', String(port), '--allow', '127.0.0.1', '--jobs', '4', '--log-file', log];
  // Ours without its object cache (C has none): the same trivial file again and again would be
  // answered from it. scripts/bench/objcache_bench.ts measures the cache.
  return kind === 'c' ? [C_DISTCCD, args] : [process.execPath, [OURS, ...args, '--no-cache', ...(kind === 'unboxed' ? ['--sandbox=off'] : [])]];
}

async function startServer(kind: Kind, work: string, groups: CpuGroups | undefined): Promise<Server> {
  const port = await freePort();
  const [file, args] = await serverCommand(kind, work, port);
  const [cmd, argv] = groups === undefined ? [file, args] : groups.wrap(kind, file, args);
  const child = spawn(cmd, argv, { stdio: 'ignore', env: { ...process.env, TMPDIR: path.join(work, 'tmp') } });
  await waitForPort(port, child);
  return { kind, port, child };
}

export function clientEnv(work: string, hosts: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env, HOME: work, DISTCC_HOSTS: hosts, DISTCC_FALLBACK: '0', DISTCC_BACKOFF_PERIOD: '0',
    DISTCC_SKIP_LOCAL_RETRY: '1', DISTCC_DIR: path.join(work, '.distcc'), ...extra,
  };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/**
 * Runs `job(kind)` `n` times for each kind, alternating job by job and swapping which kind goes
 * first every round, so drift on the machine (other load, CPU frequency, page cache) hits both
 * sides alike. Returns the total ms per kind.
 */
async function interleaved<K extends string>(kinds: readonly K[], n: number, job: (kind: K) => Promise<unknown>): Promise<Map<K, number>> {
  const total = new Map<K, number>(kinds.map((k) => [k, 0]));
  for (let i = 0; i < n; i++) {
    const order = i % 2 === 0 ? kinds : [...kinds].reverse();
    for (const kind of order) total.set(kind, total.get(kind)! + (await timed(() => job(kind))));
  }
  return total;
}

function sequential(work: string, servers: readonly Server[]): Promise<Map<Kind, number>> {
  const envs = new Map(servers.map((s) => [s.kind, clientEnv(work, `127.0.0.1:${s.port}/4`)]));
  return interleaved(servers.map((s) => s.kind), SEQUENTIAL,
    (kind) => exec('distcc', ['gcc', '-c', 'trivial.c', '-o', 'trivial.o'], { cwd: work, env: envs.get(kind) }));
}

interface MakeRun {
  readonly ms: number;
  /** CPU ms per job of the server and every compiler it ran; undefined without cgroup accounting. */
  readonly serverCpu?: number;
  /** CPU ms of the whole make: the server side plus the clients (make, distcc, cpp). */
  readonly totalCpu?: number;
}

async function makeJ4(work: string, server: Server, groups: CpuGroups | undefined): Promise<MakeRun> {
  const env = clientEnv(work, `127.0.0.1:${server.port}/4`);
  const dir = path.join(work, 'make');
  const make = ['-s', '-B', '-j4', '-C', dir, 'CC=distcc gcc'];
  if (groups === undefined) return { ms: await timed(() => exec('make', make, { env, maxBuffer: 16 << 20 })) };
  const [cmd, argv] = groups.wrap('client', 'make', make);
  const serverBefore = groups.usedMs(server.kind);
  const clientBefore = groups.usedMs('client');
  const ms = await timed(() => exec(cmd, argv, { env, maxBuffer: 16 << 20 }));
  const serverMs = groups.usedMs(server.kind) - serverBefore;
  return { ms, serverCpu: serverMs / MAKE_FILES, totalCpu: serverMs + groups.usedMs('client') - clientBefore };
}

/**
 * Ours as a user runs it per connection: the launcher that install puts in sbin, rendered for a
 * prefix whose dist is this build's. It starts distccd from the startup snapshot when the build
 * made one for this node (scripts/snapshot.ts), else from the plain script.
 */
export async function installedLauncher(work: string): Promise<string> {
  const launcher = path.join(work, 'prefix/sbin/distccd');
  if (await fs.access(launcher).then(() => true, () => false)) return launcher;
  const lib = path.join(work, 'prefix/lib/distkit');
  await fs.mkdir(lib, { recursive: true });
  await fs.mkdir(path.join(work, 'prefix/sbin'));
  await fs.symlink(path.join(REPO, 'dist'), path.join(lib, 'dist'));
  await exec('sh', [path.join(REPO, 'scripts/render.sh'), path.join(REPO, 'scripts/launcher/distccd'), launcher, '0755'], {
    env: { ...process.env, PREFIX: path.join(work, 'prefix'), NODE: process.execPath, COMPILER_DIR: '/usr/lib/distcc' },
  });
  return launcher;
}

async function inetd(work: string, kinds: readonly Kind[]): Promise<Map<Kind, number>> {
  const envs = new Map<Kind, NodeJS.ProcessEnv>();
  for (const kind of kinds) {
    const script = path.join(work, `ssh-${kind}.sh`);
    const log = await openLog(work, `${kind}-inetd.log`);
    const server = kind === 'c' ? C_DISTCCD : await installedLauncher(work);
    // distcc runs "$DISTCC_SSH host distccd --inetd ...": ignore the host and run the server here,
    // in the environment sshd (or inetd) would give it, not the benchmark's own: PATH, HOME and
    // the locale. (This machine's NODE_EXTRA_CA_CERTS alone costs every node start ~65 ms.)
    const env = ['PATH', 'LANG', 'LC_ALL', 'TMPDIR'].filter((v) => process.env[v] !== undefined).map((v) => `${v}='${process.env[v]}'`);
    const extra = kind === 'c' ? '' : ` --no-cache${kind === 'unboxed' ? ' --sandbox=off' : ''}`;
    // A runtime directory of the bench's (systemd's RuntimeDirectory=): no /run/distccd left behind.
    const runtime = path.join(work, `run-${kind}`);
    await fs.mkdir(runtime, { recursive: true, mode: 0o755 });
    await fs.writeFile(script, `#!/bin/sh\nexec env -i HOME=/ ${env.join(' ')} RUNTIME_DIRECTORY='${runtime}' '${server}' --inetd --log-file '${log}'${extra}\n`, { mode: 0o755 });
    envs.set(kind, clientEnv(work, '@localhost/4', { DISTCC_SSH: script }));
  }
  const total = await interleaved(kinds, INETD_JOBS, (kind) => exec('distcc', ['gcc', '-c', 'trivial.c', '-o', 'trivial.o'], { cwd: work, env: envs.get(kind) }));
  const starts = (await fs.readFile(path.join(work, 'ours-inetd.log'), 'utf8').catch(() => '')).match(/ ready .*start=\w+/g) ?? [];
  if (kinds.includes('ours')) console.log(`  (ours per connection, all runs so far: ${starts.filter((l) => l.endsWith('=snapshot')).length} of ${starts.length} started from the startup snapshot)`);
  return total;
}

/** A protocol-1 request for `gcc -c trivial.i -o trivial.o` carrying the .i as DOTI. */
function protocol1Request(doti: Buffer): Buffer {
  const argv = ['x86_64-linux-gnu-gcc', '-c', 'trivial.i', '-o', 'trivial.o'];
  const hdr = (tok: string, n: number): Buffer => Buffer.from(tok + n.toString(16).padStart(8, '0'), 'latin1');
  return Buffer.concat([hdr('DIST', 1), hdr('ARGC', argv.length), ...argv.flatMap((a) => [hdr('ARGV', Buffer.byteLength(a)), Buffer.from(a)]), hdr('DOTI', doti.length), doti]);
}

async function rawJob(port: number, request: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const chunks: Buffer[] = [];
    // write, never end(): distccd reads an early EOF as "the client gave up" and kills the job
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (d) => chunks.push(d));
    s.once('error', reject);
    s.once('close', () => {
      const reply = Buffer.concat(chunks).toString('latin1', 0, 24);
      if (!/^DONE0000000[01]STAT00000000/i.test(reply)) reject(new Error(`job failed: ${JSON.stringify(reply)}`));
      else resolve();
    });
  });
}

/** ms per job each server adds to the bare compiler on the same .i (all three interleaved). */
async function overhead(work: string, servers: readonly Server[]): Promise<Map<Kind, number>> {
  const doti = await fs.readFile(path.join(work, 'trivial.i'));
  const request = protocol1Request(doti);
  const ports = new Map<Kind | 'bare', number>(servers.map((s) => [s.kind, s.port]));
  const ms = await interleaved<Kind | 'bare'>([...servers.map((s) => s.kind), 'bare'], OVERHEAD_JOBS, (kind) =>
    kind === 'bare' ? exec('x86_64-linux-gnu-gcc', ['-c', 'trivial.i', '-o', 'bare.o'], { cwd: work }) : rawJob(ports.get(kind)!, request));
  const bare = ms.get('bare')!;
  return new Map(servers.map((s) => [s.kind, Math.max(0.001, (ms.get(s.kind)! - bare) / OVERHEAD_JOBS)]));
}

/** The bench tree in `work`: trivial.c (and its .i), and make/ with `files` sources and their Makefile. */
export async function prepare(work: string, files = MAKE_FILES): Promise<void> {
  await fs.chmod(work, 0o755);
  await fs.mkdir(path.join(work, '.distcc'));
  await fs.mkdir(path.join(work, 'tmp'));
  await fs.chmod(path.join(work, 'tmp'), 0o1777);
  await fs.writeFile(path.join(work, 'trivial.c'), 'int trivial(int x) { return x * 2 + 1; }\n');
  await exec('gcc', ['-E', 'trivial.c', '-o', 'trivial.i'], { cwd: work });
  const dir = path.join(work, 'make');
  await fs.mkdir(dir);
  const objs: string[] = [];
  for (let i = 0; i < files; i++) {
    await fs.writeFile(path.join(dir, `f${i}.c`), `#include <string.h>\nint f${i}(const char *s) { return (int)strlen(s) + ${i}; }\n`);
    objs.push(`f${i}.o`);
  }
  await fs.writeFile(path.join(dir, 'Makefile'), `all: ${objs.join(' ')}\n%.o: %.c\n\t$(CC) -O1 -c $< -o $@\n`);
}

export function summary(values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  const median = s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return `min ${s[0]!.toFixed(3)} median ${median.toFixed(3)} max ${s[s.length - 1]!.toFixed(3)}`;
}

async function main(): Promise<void> {
  const haveOurs = await fs.access(OURS).then(() => true, () => false);
  const kinds: Kind[] = haveOurs ? [...KINDS] : ['c'];
  // The sandbox's start-up check needs bwrap: ours would quietly run unboxed without it.
  if (SANDBOX_ROW) console.log('ours: --sandbox=auto (the default); unboxed: --sandbox=off');
  if (!haveOurs) console.log(`ours: ${OURS} is not built yet; measuring the C distccd alone (no ratios)`);
  const groups = wanted('make-j4') ? CpuGroups.open([...kinds, 'client']) : undefined;
  if (wanted('make-j4') && groups === undefined) console.log('make-j4 CPU: not measured (needs root and a cgroup v1 cpuacct or v2 hierarchy)');
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-bench-'));
  const servers: Server[] = [];
  stopServersOnSignal(servers, work, () => groups?.close());
  const results: Record<string, Record<Kind, number[]>> = {};
  const note = (name: string, kind: Kind, value: number): void => {
    (results[name] ??= { c: [], ours: [], floor: [], unboxed: [] })[kind].push(value);
    console.log(`  ${name.padEnd(13)} ${kind.padEnd(5)} ${value.toFixed(name === 'overhead' || name === 'make-j4 srv' ? 3 : 0)} ms`);
  };
  try {
    await prepare(work);
    for (const kind of kinds) servers.push(await startServer(kind, work, groups));
    // One unmeasured make each first: the page cache holds the sources, and the servers have run
    // the job path (Node compiles it as it goes), as a daemon in service has.
    if (wanted('make-j4')) for (const s of servers) await makeJ4(work, s, undefined);
    for (let run = 1; run <= RUNS; run++) {
      console.log(`run ${run}/${RUNS}`);
      const each = (name: string, ms: Map<Kind, number>): void => { for (const [kind, v] of ms) note(name, kind, v); };
      if (wanted('sequential')) each('sequential', await sequential(work, servers));
      // One make cannot be interleaved with another: the order rotates every run.
      if (wanted('make-j4')) {
        for (let i = 0; i < servers.length; i++) {
          const s = servers[(i + run) % servers.length]!;
          const m = await makeJ4(work, s, groups);
          note('make-j4', s.kind, m.ms);
          if (m.serverCpu !== undefined) note('make-j4 srv', s.kind, m.serverCpu);
          if (m.totalCpu !== undefined) note('make-j4 cpu', s.kind, m.totalCpu);
        }
      }
      if (wanted('inetd')) each('inetd', await inetd(work, kinds.filter((k) => k !== 'floor')));
      if (wanted('overhead')) each('overhead', await overhead(work, servers));
    }
  } finally {
    for (const s of servers) await stopServer(s);
    groups?.close();
    await fs.rm(work, { recursive: true, force: true });
  }
  // Other work on the machine moves every number: print the load so a reader can judge.
  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`);
  console.log(`workloads: ${SEQUENTIAL} sequential, make -j4 of ${MAKE_FILES}, ${INETD_JOBS} inetd, overhead over ${OVERHEAD_JOBS} jobs (ms/job); ${RUNS} run(s)`);
  console.log('make-j4 srv: server CPU ms per job (the daemon and its compilers); make-j4 cpu: CPU ms of the whole make');
  for (const [name, byKind] of Object.entries(results)) {
    console.log(`${name.padEnd(13)} C ms: ${summary(byKind.c)}`);
    for (const kind of ['ours', 'unboxed', 'floor'] as const) {
      if (byKind[kind].length === 0) continue;
      const ratios = byKind[kind].map((v, i) => v / byKind.c[i]!);
      console.log(`${''.padEnd(13)} ${kind.padEnd(5)}/C ratio: ${summary(ratios)}   (${kind} ms ${summary(byKind[kind])})`);
    }
  }
}

// sandbox_bench.ts takes the helpers above: run only as a program.
if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
