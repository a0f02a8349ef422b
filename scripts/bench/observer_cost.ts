// What distccd's metrics cost a compile job: the JobObserver calls one job makes (begin, the
// request, three phases, the end, the bytes) timed in a loop, against nothing at all. A real
// job takes milliseconds (a compiler runs); this prints the microseconds the counting adds.
// Not part of `npm test`. Usage: node dist/scripts/bench/observer_cost.js [--jobs N]

import { performance } from 'node:perf_hooks';
import { createMetricsRegistry } from '../../src/metrics/registry';
import { DistccdMetrics } from '../../src/metrics/distccd_metrics';

const i = process.argv.indexOf('--jobs');
const JOBS = i >= 0 ? Number(process.argv[i + 1]) : 200_000;
const ARGV = ['x86_64-linux-gnu-gcc', '-O2', '-c', 'src/module.c', '-o', 'module.o'];

function runJobs(metrics: DistccdMetrics, jobs: number): number {
  const start = performance.now();
  for (let n = 0; n < jobs; n++) {
    const t = n * 10;
    const watch = metrics.begin({ conn: n, peer: '10.0.0.7:40000' }, t);
    watch.requested({ protocol: 2, argv: ARGV }, t + 1);
    watch.entered('compile', t + 2);
    watch.entered('send', t + 8);
    watch.ended({ result: n % 10 === 0 ? 'COMPILE_ERROR' : 'COMPILE_OK', compiler: ARGV[0]!, input: 'src/module.c' }, t + 9);
    metrics.transferred(2, 4000, 9000);
  }
  return performance.now() - start;
}

const metrics = new DistccdMetrics(createMetricsRegistry('distccd'));
runJobs(metrics, 20_000); // warm up the JIT
const samples = [1, 2, 3, 4, 5].map(() => runJobs(metrics, JOBS) / JOBS);
samples.sort((a, b) => a - b);
console.log(`distccd metrics per job: median ${(samples[2]! * 1000).toFixed(2)} µs over ${JOBS} jobs x 5 (min ${(samples[0]! * 1000).toFixed(2)}, max ${(samples[4]! * 1000).toFixed(2)})`);
// A compile job takes milliseconds; 1 ms is the yardstick (a share of it, not a measured job).
console.log(`goal (distccd): the metrics cost a job nothing measurable: ${(samples[2]! * 1000).toFixed(2)} µs = ${(samples[2]! * 100).toFixed(3)} % of 1 ms`);
metrics.stop();

// dc_server: engine.answer() for GETs of stored sessions with no afterAnswer, with the -progress
// check alone (what dc_server always has), and with the metrics too. In process, so the figure is
// the counting itself, not the sockets' noise.
function answerCost(): void {
  /* eslint-disable @typescript-eslint/no-require-imports -- bench only */
  const { createCacheEngine } = require('../../src/cache/engine') as typeof import('../../src/cache/engine');
  const { MemoryStore } = require('../../src/cache/stores/memory_store') as typeof import('../../src/cache/stores/memory_store');
  const { encodeAddPayload } = require('../../src/cache/wire/add_payload') as typeof import('../../src/cache/wire/add_payload');
  const { Operation } = require('../../src/cache/wire/constants') as typeof import('../../src/cache/wire/constants');
  const { CacheMetrics } = require('../../src/metrics/cache_metrics') as typeof import('../../src/metrics/cache_metrics');
  const { createLogger } = require('../../src/log/index') as typeof import('../../src/log/index');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const log = createLogger('bench');
  const SESSIONS = 50_000;
  const OPS = 1_000_000;
  const ids = Array.from({ length: SESSIONS }, (_, n) => Buffer.from(`session-${n}`.padEnd(32, '.')));
  const data = Buffer.alloc(150, 0x5a);
  type Mode = 'bare' | 'progress' | 'metrics';
  const engines = (['bare', 'progress', 'metrics'] as const).map((mode) => {
    const store = new MemoryStore({ capacity: SESSIONS * 2 });
    let checks = 0;
    let metrics: InstanceType<typeof CacheMetrics> | undefined;
    const engine = createCacheEngine({
      store, log, clock: () => 1000,
      ...(mode === 'bare' ? {} : { afterAnswer: (op, result, started) => { metrics?.answered(op, result, started); checks++; } }),
    });
    if (mode === 'metrics') metrics = new CacheMetrics(createMetricsRegistry('dc_server'), { engine: engine.stats, store });
    for (const id of ids) engine.answer({ isResponse: false, uid: 1, operation: Operation.ADD, payload: encodeAddPayload({ timeoutMs: 3_600_000, id, data }), frames: 1 });
    return { mode: mode as Mode, engine, checks: () => checks };
  });
  const gets = ids.map((id) => ({ isResponse: false, uid: 7, operation: Operation.GET, payload: id, frames: 1 }));
  const per = new Map<Mode, number[]>();
  for (let round = 0; round < 7; round++) {
    for (const { mode, engine } of engines) {
      const start = performance.now();
      for (let n = 0; n < OPS; n++) engine.answer(gets[n % SESSIONS]!);
      (per.get(mode) ?? per.set(mode, []).get(mode)!).push(((performance.now() - start) * 1e6) / OPS);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const bare = median(per.get('bare')!);
  for (const mode of ['bare', 'progress', 'metrics'] as const) {
    const m = median(per.get(mode)!);
    console.log(`dc_server answer (GET hit, ${SESSIONS} sessions): ${mode.padEnd(8)} ${m.toFixed(0).padStart(5)} ns/op  (+${(m - bare).toFixed(0)} ns; runs ${per.get(mode)!.map((x) => x.toFixed(0)).join(' ')})`);
  }
  // The counting alone, which the engine's timing above cannot resolve on a busy machine: one
  // answered() call, as the engine makes them (one in 8 timed: a clock read and an observation).
  const metrics = new CacheMetrics(createMetricsRegistry('dc_server'), { engine: engines[0]!.engine.stats, store: new MemoryStore({ capacity: 64 }) });
  const calls = 10_000_000;
  const alone: number[] = [];
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    for (let n = 0; n < calls; n++) metrics.answered(Operation.GET, (n & 1) === 0 ? 'hit' : 'miss', (n & 7) === 0 ? start : -1);
    alone.push(((performance.now() - start) * 1e6) / calls);
  }
  console.log(`dc_server metrics.answered(), one in 8 timed: ${median(alone).toFixed(0)} ns/call (runs ${alone.map((x) => x.toFixed(0)).join(' ')})`);
  for (const { engine } of engines) void engine.close();
}
answerCost();
