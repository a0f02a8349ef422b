// The counting instruments against prom-client's own: for any observations, our histogram's
// exposition equals prom-client's Histogram's for the same buckets and labels, and a CountVec
// equals a Counter's; RateWindow over a driven clock; the job board's ring keeps the newest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import { CountVec, HistogramVec, ReadValue, SECONDS_BUCKETS } from '../../src/metrics/instruments';
import { RateWindow } from '../../src/metrics/rate_window';
import { JobBoard, RECENT_JOBS } from '../../src/metrics/job_board';
import { parseSamples } from '../support/metrics_scrape';

/** The samples of an exposition, sorted (the two libraries order series and labels differently). */
function sampleLines(text: string): Array<[string, number]> {
  return [...parseSamples(text)].sort(([a], [b]) => a.localeCompare(b));
}

test('histogram exposes the same buckets, sum and count as prom-client\'s for any observations', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom('receive', 'compile'), fc.double({ min: 0, max: 400, noNaN: true })), { maxLength: 200 }), async (observations) => {
      const ours = new Registry();
      const theirs = new Registry();
      const vec = new HistogramVec(ours, { name: 'x_seconds', help: 'h', buckets: SECONDS_BUCKETS });
      const reference = new Histogram({ name: 'x_seconds', help: 'h', buckets: [...SECONDS_BUCKETS], labelNames: ['phase'], registers: [theirs] });
      for (const [phase, value] of observations) {
        vec.child({ phase }).observe(value);
        reference.observe({ phase }, value);
      }
      assert.deepEqual(sampleLines(await ours.metrics()), sampleLines(await theirs.metrics()));
    }),
    { numRuns: 100 },
  );
});

test('count vector exposes what prom-client\'s counter does for the same increments', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const vec = new CountVec(ours, { name: 'jobs_total', help: 'h', type: 'counter' });
  const reference = new Counter({ name: 'jobs_total', help: 'h', labelNames: ['result', 'reason'], registers: [theirs] });
  for (const [labels, n] of [[{ result: 'ok' }, 5], [{ result: 'refused', reason: 'access' }, 2], [{ result: 'ok' }, 1]] as const) {
    vec.child(labels).value += n;
    reference.inc(labels, n);
  }
  assert.deepEqual(sampleLines(await ours.metrics()), sampleLines(await theirs.metrics()));
  assert.equal(vec.child({ result: 'ok' }), vec.child({ result: 'ok' }), 'one slot per label set');
});

test('read value is read when scraped, not before', async () => {
  const registry = new Registry();
  let reads = 0;
  new ReadValue(registry, { name: 'sessions', help: 'h', type: 'gauge', read: () => ++reads * 10 });
  assert.equal(reads, 0);
  assert.match(await registry.metrics(), /^sessions 10$/m);
  assert.match(await registry.metrics(), /^sessions 20$/m);
});

test('rate window gives events per second over its window when the clock is driven', () => {
  let now = 1_000_000;
  let total = 0;
  const rate = new RateWindow(() => total, { now: () => now });
  try {
    // Young process: 30 events in its first 10 s spread over the whole 60 s window.
    for (let s = 0; s < 10; s++) {
      now += 1000;
      total += 3;
      rate.sample();
    }
    assert.equal(rate.perSecond(60), 30 / 60);
    // Older than the window: only the last 10 s count.
    for (let s = 0; s < 100; s++) {
      now += 1000;
      total += s < 90 ? 1 : 7;
      rate.sample();
    }
    assert.equal(rate.perSecond(10), 7);
  } finally {
    rate.stop();
  }
});

test('job board keeps the newest ended jobs first when more than it holds have ended', () => {
  const board = new JobBoard();
  for (let n = 1; n <= RECENT_JOBS + 50; n++) board.remember({ conn: n, client: 'c', compiler: 'gcc', file: `${n}.c`, result: 'COMPILE_OK', ms: 1, endedMs: n });
  const recent = board.recent();
  assert.equal(recent.length, RECENT_JOBS);
  assert.equal(recent[0]!.conn, RECENT_JOBS + 50);
  assert.equal(recent[RECENT_JOBS - 1]!.conn, 51);
  board.start({ conn: 7, client: 'c', compiler: 'gcc', file: 'a.c', protocol: 2, phase: 'queue', startedMs: 100 });
  assert.equal(board.count('queue'), 1);
  assert.deepEqual(board.running(350).map((j) => j.elapsedMs), [250]);
});
