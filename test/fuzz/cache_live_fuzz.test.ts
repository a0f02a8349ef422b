import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheLiveTarget, cacheProxyTarget } from './cache_live_targets';
import { expectFor } from './cache_live_fuzz';
import { formatSummary } from './fuzz_target';
import { encodeMessage, Operation } from '../../src/cache/wire/index';

test('live fuzz oracle predicts a drop for a short ADD and for a bad byte, and answers before them', () => {
  const get = encodeMessage({ isResponse: false, uid: 5, operation: Operation.GET }, Buffer.from('k'));
  const shortAdd = encodeMessage({ isResponse: false, uid: 6, operation: Operation.ADD }, Buffer.alloc(7));
  assert.deepEqual(expectFor(Buffer.concat([get, shortAdd, get])), { responses: [{ uid: 5, operation: Operation.GET }], drop: true });
  const bad = Buffer.from(get);
  bad[9] = 1;
  assert.deepEqual(expectFor(Buffer.concat([get, bad])), { responses: [{ uid: 5, operation: Operation.GET }], drop: true });
  assert.deepEqual(expectFor(Buffer.concat([get, get.subarray(0, 20)])).drop, false);
});

// The quick run of `npm run fuzz -- --target cache-live`: bounded in count (1500 connections) and time (15 s).
test('cache engine on a real socket answers, drops and logs damaged streams exactly as predicted while a good client is served', async () => {
  const summary = await cacheLiveTarget.run({ cases: 1500, seed: 20261121, from: 0, timeLimitMs: 15_000 });
  assert.ok(summary.cases >= 300, `only ${summary.cases} connections ran`);
  assert.equal(summary.crashes + summary.hangs + summary.violations, 0, formatSummary(summary));
  assert.ok(Number(summary.extra.dropped_as_predicted) > 0 && Number(summary.extra.good_client_ops) > 0, formatSummary(summary));
});

// The quick run of `npm run fuzz -- --target cache-proxy` (found the short-ADD upstream drop).
test('dc_client proxy sessions answer or close damaged application streams without losing the shared upstream', async () => {
  const summary = await cacheProxyTarget.run({ cases: 1000, seed: 20261121, from: 0, timeLimitMs: 15_000 });
  assert.ok(summary.cases >= 200, `only ${summary.cases} connections ran`);
  assert.equal(summary.crashes + summary.hangs + summary.violations, 0, formatSummary(summary));
  assert.ok(Number(summary.extra.dropped_as_predicted) > 0 && Number(summary.extra.good_client_ops) > 0, formatSummary(summary));
});
