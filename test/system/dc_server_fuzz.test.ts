import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheServerTarget } from '../fuzz/cache_live_targets';
import { formatSummary } from '../fuzz/fuzz_target';

// The quick run of `npm run fuzz -- --target cache-server`: the real dc_server program, bounded in
// count (1500 connections) and time (20 s). (Found the reset that lost answers after a drop.)
test('dc_server answers, drops and logs damaged streams exactly as predicted while a good client is served', async () => {
  const summary = await cacheServerTarget.run({ cases: 1500, seed: 20261121, from: 0, timeLimitMs: 20_000 });
  assert.ok(summary.cases >= 300, `only ${summary.cases} connections ran`);
  assert.equal(summary.crashes + summary.hangs + summary.violations, 0, formatSummary(summary));
  assert.ok(Number(summary.extra.dropped_as_predicted) > 0 && Number(summary.extra.good_client_ops) > 0, formatSummary(summary));
});
