// `npm run bench -- startup`: how long distccd takes to start, ours against Debian's C distccd
// (/usr/bin/distccd) in one run: `--version`, `--help`, and `--daemon` until the command returns,
// which for a detaching daemon means "listening" (ours waits for the daemon's ready report; C's
// parent returns once it has forked). Ours runs both ways the installed launcher can start it:
// the plain script (node dist/src/cli/distccd.js) and the startup snapshot (node --snapshot-blob).
// `node -e 0` is timed beside them: no node program starts faster, and a detaching daemon starts
// two. --compare REPO adds another built checkout's script and snapshot (before/after a change). Each command
// runs RUNS times (default 20), the contenders alternating run by run so drift on the machine
// hits all alike; the median and the range in ms are printed. Every daemon started is stopped by
// the pid in its pid file, and waited for, before the next run. All run in a clean environment
// (PATH, HOME, the locale), as a service manager starts them. Loopback only. Not part of
// `npm test`. Usage: node dist/scripts/bench/startup_bench.js [--runs 20] [--compare REPO]

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/support/free_port';

const REPO = path.resolve(__dirname, '../../..');
const SCRIPT = path.join(REPO, 'dist/src/cli/distccd.js');
const BLOB = path.join(REPO, 'dist/snapshot/distccd.blob');
const C_DISTCCD = '/usr/bin/distccd';
const COMMAND_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const RUNS = Number(argValue('--runs') ?? 20);
const COMPARE = argValue('--compare');

/** One way to start distccd: a label and the command line for the given arguments. */
interface Contender {
  readonly label: string;
  command(args: readonly string[]): [string, string[]];
}

function contenders(): Contender[] {
  const list: Contender[] = [
    { label: 'C distccd', command: (args) => [C_DISTCCD, [...args]] },
    { label: 'ours (script)', command: (args) => [process.execPath, [SCRIPT, ...args]] },
  ];
  if (fs.existsSync(BLOB)) list.push({ label: 'ours (snapshot)', command: (args) => [process.execPath, ['--snapshot-blob', BLOB, '--', ...args]] });
  else console.log(`(no ${path.relative(REPO, BLOB)}: the snapshot is left out)`);
  if (COMPARE !== undefined) {
    const other = path.resolve(COMPARE, 'dist/src/cli/distccd.js');
    if (!fs.existsSync(other)) throw new Error(`--compare ${COMPARE}: no ${other} (build that checkout first)`);
    list.push({ label: 'compared (script)', command: (args) => [process.execPath, [other, ...args]] });
    const otherBlob = path.resolve(COMPARE, 'dist/snapshot/distccd.blob');
    if (fs.existsSync(otherBlob)) list.push({ label: 'compared (snapshot)', command: (args) => [process.execPath, ['--snapshot-blob', otherBlob, '--', ...args]] });
  }
  return list;
}

const NODE_FLOOR: Contender = { label: 'node -e 0', command: () => [process.execPath, ['-e', '0']] };

/** Runs one command to its exit and returns the wall time in ms; a failure stops the bench. */
function timedRun(file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    execFile(file, args, { env, timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve(ms);
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stops the daemon whose pid the file holds (SIGTERM, then SIGKILL) and waits until it is gone. */
async function stopDaemon(pidFile: string): Promise<void> {
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`pid file ${pidFile} holds no pid`);
  process.kill(pid, 'SIGTERM');
  const until = Date.now() + STOP_TIMEOUT_MS;
  while (alive(pid)) {
    if (Date.now() > until) process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 10));
  }
  fs.rmSync(pidFile, { force: true });
}

/** One `--daemon` start until the command returns; the daemon is stopped afterwards (not timed). */
async function detach(who: Contender, work: string, env: NodeJS.ProcessEnv): Promise<number> {
  const name = who.label.replace(/[^a-z]+/gi, '-');
  const pidFile = path.join(work, `${name}.pid`);
  const port = await freePort();
  const logFile = path.join(work, `${name}.log`);
  fs.writeFileSync(logFile, '', { flag: 'a', mode: 0o666 });
  fs.chmodSync(logFile, 0o666);
  const [file, args] = who.command(['--daemon', '--listen', '127.0.0.1', '--port', String(port), '--allow', '127.0.0.1', '--pid-file', pidFile, '--log-file', logFile]);
  const ms = await timedRun(file, args, env);
  // C's parent returns once forked: its child writes the pid file a moment later.
  const until = Date.now() + STOP_TIMEOUT_MS;
  while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, 'utf8').trim() === '') {
    if (Date.now() > until) throw new Error(`${who.label} wrote no pid file ${pidFile}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  await stopDaemon(pidFile);
  return ms;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function measure(name: string, list: readonly Contender[], once: (who: Contender) => Promise<number>): Promise<void> {
  const times = new Map<Contender, number[]>(list.map((c) => [c, []]));
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 === 0 ? list : [...list].reverse();
    for (const who of order) times.get(who)!.push(await once(who));
  }
  for (const who of list) {
    const t = times.get(who)!;
    console.log(`  ${name.padEnd(10)} ${who.label.padEnd(20)} median ${median(t).toFixed(1).padStart(6)} ms  (min ${Math.min(...t).toFixed(1)}, max ${Math.max(...t).toFixed(1)})`);
  }
}

async function main(): Promise<void> {
  const list = contenders();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'distkit-startup-'));
  // Started as root, both drop to the distcc user: TMPDIR must be usable by it.
  fs.chmodSync(work, 0o1777);
  // A clean environment, as a service manager gives: PATH, HOME and the locale. The bench's own
  // may hold NODE_OPTIONS (the snapshot refuses V8 flags it was not built with) or
  // NODE_EXTRA_CA_CERTS (every node start would parse a CA bundle, ~65 ms on the bench machine).
  const env: NodeJS.ProcessEnv = { HOME: '/', TMPDIR: work };
  for (const name of ['PATH', 'LANG', 'LC_ALL']) if (process.env[name] !== undefined) env[name] = process.env[name];
  console.log(`distccd start-up, median of ${RUNS} runs (node ${process.version}, ${os.availableParallelism()} CPUs, load ${os.loadavg()[0]!.toFixed(2)}):`);
  try {
    await measure('--version', [...list, NODE_FLOOR], (who) => timedRun(...who.command(['--version']), env));
    await measure('--help', list, (who) => timedRun(...who.command(['--help']), env));
    await measure('--daemon', list, (who) => detach(who, work, env));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
