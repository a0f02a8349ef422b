// `npm run bench -- sandbox`: what the compile sandbox (issue 21) costs, against its budget: at
// most 5 ms per trivial job and 3% of a build's wall time. Ours with the sandbox (the default,
// "on") and with --sandbox=off ("off") in the same run, each in a CPU group of its own
// (cpu_groups.ts: the server, bwrap and every compiler it ran), for both ways distccd serves:
//   - tcp:   a standalone daemon (--daemon --no-detach) per side ("on": each compiler's jobs in its
//            sandbox host, sandbox_host.ts, whose bwrap and jobs count in the daemon's group);
//   - inetd: a distccd process per connection, started by the real client over DISTCC_SSH (the
//            launcher install puts in sbin, as test/support starts inetd mode; "on": its one job in the
//            sandbox host program it starts ahead of the request, outside bwrap).
// Trivial jobs: `distcc gcc -c trivial.c` one after another, on and off alternating job by job
// (the order swaps every job), wall time and the server side's CPU per job. make -j4: the bench
// tree of distcc_bench.ts, each round on, off, off, on (the next off, on, on, off), so neither
// side runs first more often and a drift within the round hits both alike; each make starts after
// a pause (SETTLE_MS) in which the kernel finishes what the last one deferred (namespaces torn
// down in its workers, after an --inetd make ~20 of them), which otherwise ran during the next
// make: with 3 rounds "on" went first twice, after an --inetd "on" make once. Wall % and the whole
// build's CPU % (server and client side), and the server side's CPU per job in ms (the client
// runs the same work both ways). Each figure is the median over rounds with the spread
// (min..max), the budget beside it. CPU time is the steadier figure on a shared machine.
//   node dist/scripts/bench/sandbox_bench.js [--quick] [--rounds N] [--only trivial,make] [--files N]
// (--files: the make tree's size, distcc_bench.ts's by default: 20 with --quick, else 100).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../test/support/free_port';
import { stopServer, stopServersOnSignal, waitForPort } from './bench_servers';
import { CpuGroups } from './cpu_groups';
import { clientEnv, installedLauncher, openLog, prepare } from './distcc_bench';

const exec = promisify(execFile);
const OURS = path.resolve(__dirname, '../../src/cli/distccd.js');
const QUICK = process.argv.includes('--quick');
const ROUNDS = ((): number => {
  const i = process.argv.indexOf('--rounds');
  return i >= 0 ? Number(process.argv[i + 1]) : QUICK ? 3 : 5;
})();
const ONLY = ((): Set<string> | undefined => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? new Set((process.argv[i + 1] ?? '').split(',')) : undefined;
})();
const TRIVIAL_JOBS = QUICK ? 10 : 30;
const FILES = ((): number | undefined => {
  const i = process.argv.indexOf('--files');
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
})();
const TRIVIAL_BUDGET_MS = 5;
/** The pause before each measured make (see the top of this file). */
const SETTLE_MS = 1_000;
const BUILD_BUDGET_PCT = 3;

type Side = 'on' | 'off';
type Mode = 'tcp' | 'inetd';
const SIDES: readonly Side[] = ['on', 'off'];
const MODES: readonly Mode[] = ['tcp', 'inetd'];
const group = (mode: Mode, side: Side): string => `${mode}-${side}`;
const sandboxArgs = (side: Side): string[] => ['--no-cache', ...(side === 'off' ? ['--sandbox=off'] : [])];
const quote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

async function startDaemon(work: string, side: Side, groups: CpuGroups): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const log = await openLog(work, `tcp-${side}.log`);
  const args = [OURS, '--daemon', '--no-detach', '--listen', '127.0.0.1', '--port', String(port), '--allow', '127.0.0.1', '--jobs', '4', '--log-file', log, ...sandboxArgs(side)];
  const [cmd, argv] = groups.wrap(group('tcp', side), process.execPath, args);
  const child = spawn(cmd, argv, { stdio: 'ignore', env: { ...process.env, TMPDIR: path.join(work, 'tmp') } });
  await waitForPort(port, child);
  return { port, child };
}

/** The DISTCC_SSH script that runs one distccd --inetd per connection, inside the side's group. */
async function inetdScript(work: string, side: Side, groups: CpuGroups): Promise<string> {
  const script = path.join(work, `ssh-${side}.sh`);
  const log = await openLog(work, `inetd-${side}.log`);
  // The environment sshd or inetd would give it, not the bench's own (distcc_bench.ts inetd).
  const env = ['PATH', 'LANG', 'LC_ALL'].filter((v) => process.env[v] !== undefined).map((v) => `${v}=${process.env[v]!}`);
  // Its runtime directory (the remembered sandbox check and mounts), as systemd's RuntimeDirectory=
  // gives one: a root bench run leaves no /run/distccd behind.
  const runtime = path.join(work, `run-${side}`);
  await fs.mkdir(runtime, { recursive: true, mode: 0o755 });
  const [cmd, argv] = groups.wrap(group('inetd', side), 'env', ['-i', 'HOME=/', ...env, `TMPDIR=${path.join(work, 'tmp')}`, `RUNTIME_DIRECTORY=${runtime}`,
    await installedLauncher(work), '--inetd', '--log-file', log, ...sandboxArgs(side)]);
  await fs.writeFile(script, `#!/bin/sh\nexec ${[cmd, ...argv].map(quote).join(' ')}\n`, { mode: 0o755 });
  return script;
}

interface Sample { wall: number; cpu: number }

/** Wall ms of `fn` and the CPU ms group `name` used meanwhile. */
async function measure(groups: CpuGroups, name: string, fn: () => Promise<unknown>): Promise<Sample> {
  const cpu = groups.usedMs(name);
  const start = process.hrtime.bigint();
  await fn();
  return { wall: Number(process.hrtime.bigint() - start) / 1e6, cpu: groups.usedMs(name) - cpu };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const spread = (xs: number[], digits: number, unit: string): string =>
  `${median(xs).toFixed(digits)}${unit} (${Math.min(...xs).toFixed(digits)}..${Math.max(...xs).toFixed(digits)})`;

async function main(): Promise<void> {
  const groups = CpuGroups.open([...MODES.flatMap((m) => SIDES.map((s) => group(m, s))), 'client']);
  if (groups === undefined) throw new Error('needs root and a cgroup v1 cpuacct or v2 hierarchy: the CPU figures are the point');
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-sandbox-bench-'));
  const daemons: Array<{ child: ChildProcess }> = [];
  stopServersOnSignal(daemons, work, () => groups.close());
  // Per mode: per round, [on, off] per-job means (trivial) and make samples.
  const trivial = new Map<Mode, Array<Record<Side, Sample>>>(MODES.map((m) => [m, []]));
  const builds = new Map<Mode, Array<Record<Side, Sample & { total: number }>>>(MODES.map((m) => [m, []]));
  let files = 0; // in the make tree
  try {
    await prepare(work, FILES);
    files = (await fs.readdir(path.join(work, 'make'))).filter((f) => f.endsWith('.c')).length;
    const envs = new Map<string, NodeJS.ProcessEnv>();
    for (const side of SIDES) {
      const d = await startDaemon(work, side, groups);
      daemons.push(d);
      envs.set(group('tcp', side), clientEnv(work, `127.0.0.1:${d.port}/4`));
      envs.set(group('inetd', side), clientEnv(work, '@localhost/4', { DISTCC_SSH: await inetdScript(work, side, groups) }));
    }
    const compile = (name: string): Promise<unknown> => exec('distcc', ['gcc', '-c', 'trivial.c', '-o', 'trivial.o'], { cwd: work, env: envs.get(name), timeout: 120_000 });
    const make = (name: string): Promise<unknown> => {
      const [cmd, argv] = groups.wrap('client', 'make', ['-s', '-B', '-j4', '-C', path.join(work, 'make'), 'CC=distcc gcc']);
      return exec(cmd, argv, { env: envs.get(name), maxBuffer: 16 << 20, timeout: 600_000 });
    };
    // Warm-up, unmeasured: the page cache, the daemons' job path, the remembered sandbox check.
    for (const mode of MODES) for (const side of SIDES) await compile(group(mode, side));
    for (let round = 0; round < ROUNDS; round++) {
      console.log(`round ${round + 1}/${ROUNDS}`);
      for (const mode of MODES) {
        if (ONLY !== undefined && !ONLY.has('trivial')) break;
        const sum: Record<Side, Sample> = { on: { wall: 0, cpu: 0 }, off: { wall: 0, cpu: 0 } };
        for (let i = 0; i < TRIVIAL_JOBS; i++) {
          for (const side of i % 2 === 0 ? SIDES : [...SIDES].reverse()) {
            const s = await measure(groups, group(mode, side), () => compile(group(mode, side)));
            sum[side].wall += s.wall / TRIVIAL_JOBS;
            sum[side].cpu += s.cpu / TRIVIAL_JOBS;
          }
        }
        trivial.get(mode)!.push(sum);
        console.log(`  trivial ${mode.padEnd(5)} on ${sum.on.wall.toFixed(1)} ms wall ${sum.on.cpu.toFixed(1)} ms cpu | off ${sum.off.wall.toFixed(1)} ms wall ${sum.off.cpu.toFixed(1)} ms cpu`);
      }
      for (const mode of MODES) {
        if (ONLY !== undefined && !ONLY.has('make')) break;
        const zero = (): Sample & { total: number } => ({ wall: 0, cpu: 0, total: 0 });
        const sample: Record<Side, Sample & { total: number }> = { on: zero(), off: zero() };
        const [first, second] = round % 2 === 0 ? SIDES : [...SIDES].reverse();
        for (const side of [first!, second!, second!, first!]) {
          await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
          const client = groups.usedMs('client');
          const s = await measure(groups, group(mode, side), () => make(group(mode, side)));
          const total = s.cpu + groups.usedMs('client') - client;
          sample[side] = { wall: sample[side].wall + s.wall / 2, cpu: sample[side].cpu + s.cpu / 2, total: sample[side].total + total / 2 };
        }
        builds.get(mode)!.push(sample);
        console.log(`  make-j4 ${mode.padEnd(5)} on ${sample.on.wall.toFixed(0)} ms wall ${sample.on.total.toFixed(0)} ms cpu | off ${sample.off.wall.toFixed(0)} ms wall ${sample.off.total.toFixed(0)} ms cpu (${files} files, mean of two each)`);
      }
    }
  } finally {
    for (const d of daemons) await stopServer(d);
    groups.close();
    await fs.rm(work, { recursive: true, force: true });
  }
  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs; ${ROUNDS} rounds, median (min..max) over rounds`);
  console.log('the sandbox\'s cost (on - off)                         figure                budget');
  for (const mode of MODES) {
    const t = trivial.get(mode)!;
    if (t.length > 0) {
      const wall = t.map((r) => r.on.wall - r.off.wall);
      const cpu = t.map((r) => r.on.cpu - r.off.cpu);
      const verdict = (xs: number[]): string => (median(xs) <= TRIVIAL_BUDGET_MS ? 'within' : 'OVER');
      console.log(`trivial job, ${mode.padEnd(5)} wall per job (ms)                 ${spread(wall, 2, '').padEnd(22)}<= ${TRIVIAL_BUDGET_MS} ms  ${verdict(wall)}`);
      console.log(`trivial job, ${mode.padEnd(5)} server CPU per job (ms)           ${spread(cpu, 2, '').padEnd(22)}<= ${TRIVIAL_BUDGET_MS} ms  ${verdict(cpu)}`);
    }
    const b = builds.get(mode)!;
    if (b.length > 0) {
      const wall = b.map((r) => (100 * (r.on.wall - r.off.wall)) / r.off.wall);
      const cpu = b.map((r) => (100 * (r.on.total - r.off.total)) / r.off.total);
      const verdict = (xs: number[]): string => (median(xs) <= BUILD_BUDGET_PCT ? 'within' : 'OVER');
      console.log(`make -j4,    ${mode.padEnd(5)} build wall (%)                    ${spread(wall, 1, '%').padEnd(22)}<= ${BUILD_BUDGET_PCT}%     ${verdict(wall)}`);
      console.log(`make -j4,    ${mode.padEnd(5)} build CPU, server + client (%)    ${spread(cpu, 1, '%').padEnd(22)}<= ${BUILD_BUDGET_PCT}%     ${verdict(cpu)}`);
      // The same cost as server CPU per job, against the budget's share of the build's CPU per job.
      const perJob = b.map((r) => (r.on.cpu - r.off.cpu) / files);
      const share = (BUILD_BUDGET_PCT / 100) * median(b.map((r) => r.off.total / files));
      console.log(`make -j4,    ${mode.padEnd(5)} server CPU per job (ms)           ${spread(perJob, 2, '').padEnd(22)}<= ${share.toFixed(2)} ms (3% of the build's CPU per job)`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
