// The leak run (`npm run fuzz -- --target distcc-jobs --cases 10000`; 1000 in npm test): the real
// distccd (--jobs 4, private masquerade dir and TMPDIR) serves N cheap jobs from 8 connections at
// a time, a fixed mix of successes (`true` as the compiler, protocols 1 and 3: a pump job makes a
// whole temp tree), compile errors (`false`), refused compilers, malformed requests and clients
// that vanish mid-request. Every job must end as its kind says; afterwards TMPDIR must be empty
// and the daemon's open descriptors (/proc/PID/fd) back to the figure measured after warm-up.

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd } from '../support/distccd_harness';
import { encodeRequest, sendRaw } from '../support/raw_distcc_client';
import { encodeBody, encodeInteger } from '../../src/compile/wire/tokens';
import { compressLzo } from '../../src/compile/wire/lzo';
import { MAX_FINDINGS, type Finding, type FuzzSummary, type FuzzTarget } from './fuzz_target';
import { procMemory } from './server_program';

const SOURCE = 'int x;\n';

function pumpWith(compiler: string): Buffer {
  const cwd = '/home/u/p';
  const argv = [compiler, '-c', `${cwd}/t.c`, '-o', 't.o'];
  return Buffer.concat([
    encodeInteger('DIST', 3), ...encodeBody('CDIR', cwd), encodeInteger('ARGC', argv.length), ...argv.flatMap((a) => encodeBody('ARGV', a)),
    encodeInteger('NFIL', 2), ...encodeBody('NAME', `${cwd}/t.c`), ...encodeBody('FILE', compressLzo(Buffer.from(SOURCE))),
    ...encodeBody('NAME', `${cwd}/inc/forcing_technique_271828`), ...encodeBody('FILE', Buffer.alloc(0)),
  ]);
}

type Kind = 'ok1' | 'ok3' | 'error' | 'refused' | 'malformed' | 'vanished';
const MIX: readonly Kind[] = ['ok1', 'ok3', 'error', 'refused', 'malformed', 'vanished', 'ok1', 'error'];

async function runOne(port: number, kind: Kind): Promise<string | undefined> {
  switch (kind) {
    case 'ok1':
    case 'ok3': {
      const a = await sendRaw(port, kind === 'ok1' ? encodeRequest(1, ['true', '-c', 't.c', '-o', 't.o'], SOURCE) : pumpWith('true'));
      return a.kind === 'answer' && a.response.status === 0 ? undefined : `${kind}: ${a.kind === 'answer' ? `STAT ${a.response.status} ${a.response.stderr.toString()}` : a.kind}`;
    }
    case 'error': {
      const a = await sendRaw(port, encodeRequest(2, ['false', '-c', 't.c', '-o', 't.o'], SOURCE));
      return a.kind === 'answer' && a.response.status === 1 << 8 ? undefined : `error: ${a.kind}`;
    }
    case 'refused': {
      const a = await sendRaw(port, encodeRequest(1, ['tcc', '-c', 't.c', '-o', 't.o'], SOURCE));
      return a.kind === 'answer' && a.response.status === 101 << 8 ? undefined : `refused: ${a.kind}`;
    }
    case 'malformed': {
      const a = await sendRaw(port, Buffer.from('DIST00000001ARGC0000zzzz'));
      return a.kind === 'closed' && a.bytes.length === 0 ? undefined : `malformed: ${a.kind}`;
    }
    case 'vanished': {
      const a = await sendRaw(port, encodeRequest(1, ['true', '-c', 't.c', '-o', 't.o'], SOURCE).subarray(0, 50), { abandonAfterMs: 1 });
      return a.kind === 'closed' ? undefined : `vanished: ${a.kind}`;
    }
  }
}

async function fdCount(pid: number): Promise<number> {
  return (await fs.readdir(`/proc/${pid}/fd`)).length;
}

export async function runDistccJobs(options: { cases: number; timeLimitMs: number; progress?: (l: string) => void }): Promise<FuzzSummary> {
  const started = Date.now();
  const cleanups: Array<() => Promise<unknown>> = [];
  const t = { after: (fn: () => Promise<unknown>) => void cleanups.push(fn) };
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'distcc-jobs-'));
  const findings: Finding[] = [];
  let violations = 0;
  let crashes = 0;
  let n = 0;
  let peak = 0;
  const extra: Record<string, number> = { idle_fds: 0, fds_after: 0, files_left: 0 };
  const note = (kind: Finding['kind'], index: number, detail: string): void => {
    if (kind === 'crash') crashes++;
    else violations++;
    if (findings.length < MAX_FINDINGS) findings.push({ kind, index, detail, input: '' });
  };
  try {
    const tmp = path.join(root, 'tmp');
    await fs.mkdir(tmp);
    const masq = await makeMasqueradeDir(path.join(root, 'masq'));
    const d = await startDistccd(t, { compilerDir: masq, args: ['--jobs', '4', '--log-level', 'notice'], env: { TMPDIR: tmp } });
    const pid = d.child.pid!;
    // Warm-up: one job of each kind, so lazily opened descriptors are in the idle figure.
    for (const kind of new Set(MIX)) await runOne(d.port, kind);
    await d.waitForCount(/client: /, new Set(MIX).size);
    await new Promise((r) => setTimeout(r, 200));
    extra.idle_fds = await fdCount(pid);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < options.cases && Date.now() - started < options.timeLimitMs) {
        const index = next++;
        const kind = MIX[index % MIX.length]!;
        const why = await runOne(d.port, kind).catch((e: Error) => `${kind}: ${e.message}`);
        n++;
        if (why !== undefined) note('violation', index, why);
        if ((n & 1023) === 0) {
          peak = Math.max(peak, procMemory(pid, 'VmHWM'));
          options.progress?.(`distcc-jobs: ${n} jobs, ${violations} findings, ${((Date.now() - started) / 1000).toFixed(0)} s`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, () => worker()));
    // Every job has logged its summary before we count what is left.
    await d.waitForCount(/client: /, n + new Set(MIX).size, 30_000).catch((e: Error) => note('hang', -1, e.message.slice(0, 300)));
    for (let i = 0; i < 50; i++) {
      extra.fds_after = await fdCount(pid);
      if (extra.fds_after <= extra.idle_fds) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (extra.fds_after > extra.idle_fds) note('violation', -1, `daemon holds ${extra.fds_after} fds after the run, ${extra.idle_fds} when idle`);
    const left = await fs.readdir(tmp);
    extra.files_left = left.length;
    if (left.length > 0) note('violation', -1, `left in TMPDIR: ${left.slice(0, 10).join(' ')}`);
    peak = Math.max(peak, procMemory(pid, 'VmHWM'));
    if (d.child.exitCode !== null) note('crash', -1, `distccd exited ${d.child.exitCode}`);
    extra.longest_summary_ms = Math.max(0, ...d.lines.map((l) => Number(/ time:(\d+)ms/.exec(l)?.[1] ?? 0)));
  } finally {
    for (const fn of cleanups.reverse()) await fn();
    await fs.rm(root, { recursive: true, force: true });
  }
  return { target: 'distcc-jobs', cases: n, crashes, hangs: 0, violations, peakRssBytes: peak, seconds: (Date.now() - started) / 1000, findings, extra };
}

export const distccJobsTarget: FuzzTarget = {
  name: 'distcc-jobs',
  describe: 'leak run: cheap jobs, failures, refusals, disconnects on the real distccd; TMPDIR and fds checked after',
  run: (o) => runDistccJobs({ cases: o.cases, timeLimitMs: o.timeLimitMs, progress: o.progress }),
};
