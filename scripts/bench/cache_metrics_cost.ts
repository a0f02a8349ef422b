// What counting costs dc_server's hot path (issue 19, `npm run bench -- metrics`): three of our
// dc_servers holding 50,000 sessions of 150 B on unix sockets, `plain` and `plain again` without
// metrics and `-metrics` with them, measured by the C load generator (GET, then ADD; 1 client,
// the request-answer ping-pong, and 16 clients, where the server is busy all the time) in
// `rounds` rounds (`--rounds N`, default 21) of one short run each (300 ms, `--ms`), in an order rotated from round
// to round so drift on a shared machine hits all three alike.
//
// The figure is the server's CPU time per operation, all its threads (V8's GC helpers too), in
// ns from the kernel's scheduler accounting (/proc/PID/task/*/schedstat) rather than the 10 ms
// ticks of /proc/PID/stat. Each round gives the ratios of the two others over `plain` measured
// back to back; `plain again`/`plain` is the control: two identical servers, so its spread is
// the run-to-run spread of this machine. The metrics cost nothing measurable when the median
// `-metrics` ratio differs from the control's by less than the rounds can resolve (printed).

import fs from 'node:fs';
import { fillAll, measure, startAll, stopAll, type Bench, type Live } from './cache_cells';
import type { LoadOp } from './cache_load';
import { oursTarget } from './cache_targets';

const SESSIONS = 50_000;
const SIZE = 150;

/** CPU time of every thread of `pid` so far, ns (field 1 of schedstat: time spent on a CPU). */
function cpuNsOf(pid: number): number {
  let ns = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read: its time is lost to both sides alike
    }
  }
  return ns;
}

const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);
const median = (xs: readonly number[]): number => sorted(xs)[Math.floor(xs.length / 2)]!;
/** The 25th and 75th percentiles: the middle half of the runs. */
function quartiles(xs: readonly number[]): [number, number] {
  const s = sorted(xs);
  return [s[Math.floor((s.length - 1) / 4)]!, s[Math.ceil(((s.length - 1) * 3) / 4)]!];
}

interface Variant {
  readonly name: string;
  readonly extra: readonly string[];
}

export async function measureMetricsCost(bench: Bench, repo: string, rounds: number): Promise<void> {
  const variants: Variant[] = [
    { name: 'plain', extra: [] },
    { name: 'plain again', extra: [] },
    { name: '-metrics', extra: ['-metrics', '127.0.0.1:0'] },
  ];
  const lives: Live[] = [];
  try {
    for (const v of variants) lives.push((await startAll(bench, [oursTarget(repo, { name: v.name, extra: v.extra })], 'unix', SESSIONS, SIZE))[0]!);
    const targets = variants.map((v) => oursTarget(repo, { name: v.name }));
    console.log(`memory after fill: ${await fillAll(bench, targets, lives, SESSIONS, SIZE)}`);
    for (const live of lives) await measure(bench, live, { op: 'GET', clients: 4, ms: bench.ms, ids: SESSIONS, size: SIZE });
    console.log(`metrics cost: dc_server, unix socket, ${SESSIONS} sessions of ${SIZE} B, ${bench.ms} ms per run, ${rounds} rounds, order rotated; server CPU per op, all threads (schedstat ns)`);
    for (const clients of [1, 16]) {
      for (const op of ['GET', 'ADD'] as const) await measureCell(bench, lives, variants, { op, clients, rounds });
    }
  } finally {
    await stopAll(lives);
  }
}

async function measureCell(bench: Bench, lives: readonly Live[], variants: readonly Variant[], cell: { op: LoadOp; clients: number; rounds: number }): Promise<void> {
  const cpu = variants.map(() => [] as number[]);
  const rates = variants.map(() => [] as number[]);
  for (let round = 0; round < cell.rounds; round++) {
    for (let k = 0; k < variants.length; k++) {
      const i = (round + k) % variants.length;
      const pid = lives[i]!.server.pid;
      const before = cpuNsOf(pid);
      const r = await measure(bench, lives[i]!, { op: cell.op, clients: cell.clients, ms: bench.ms, ids: SESSIONS, size: SIZE });
      cpu[i]!.push((cpuNsOf(pid) - before) / Math.max(1, r.ops));
      rates[i]!.push((r.ops * 1000) / r.ms);
    }
  }
  const label = `${cell.op} ${String(cell.clients).padStart(2)} cl`;
  const per = variants.map((v, i) => `${v.name} ${median(cpu[i]!).toFixed(0)} ns/op ${(median(rates[i]!) / 1000).toFixed(1)}k ops/s`).join(' | ');
  console.log(`${label}  ${per}`);
  // Ratios of runs measured back to back in the same round.
  const ratios = variants.map((_, i) => cpu[i]!.map((c, round) => c / cpu[0]![round]!));
  const control = ratios[1]!;
  const [q1, q3] = quartiles(control);
  // What the rounds can resolve: two standard errors of a difference of two medians (the
  // standard error of a median being about 0.93 x the interquartile range / sqrt(rounds)).
  const resolution = (2 * Math.SQRT2 * 0.93 * (q3 - q1)) / Math.sqrt(cell.rounds);
  for (let i = 2; i < variants.length; i++) {
    const r = ratios[i]!;
    const difference = median(r) - median(control);
    const verdict = Math.abs(difference) <= resolution ? 'no measurable difference' : difference > 0 ? 'COSTS MORE' : 'costs less';
    console.log(
      `${label}  goal: ${variants[i]!.name}/plain CPU per op no different from plain again/plain: ${median(r).toFixed(3)} vs ${median(control).toFixed(3)} (difference ${(difference * 100).toFixed(1)} %, resolution ±${(resolution * 100).toFixed(1)} %; run-to-run spread, middle half of plain again/plain: ${q1.toFixed(3)}..${q3.toFixed(3)})   ${verdict}`,
    );
  }
}
