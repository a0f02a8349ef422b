import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheClientTarget } from '../fuzz/cache_live_targets';
import { formatSummary } from '../fuzz/fuzz_target';

// The quick run of `npm run fuzz -- --target cache-client`: the real dc_client in front of the
// real dc_server, bounded in count (1000 application connections) and time (20 s).
test('dc_client answers or closes damaged application streams without ever losing its dc_server connection', async () => {
  const summary = await cacheClientTarget.run({ cases: 1000, seed: 20261121, from: 0, timeLimitMs: 20_000 });
  assert.ok(summary.cases >= 200, `only ${summary.cases} connections ran`);
  assert.equal(summary.crashes + summary.hangs + summary.violations, 0, formatSummary(summary));
  assert.ok(Number(summary.extra.dropped_as_predicted) > 0 && Number(summary.extra.good_client_ops) > 0, formatSummary(summary));
});
