import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distccLiveTarget, expectForRequest } from './distcc_live_fuzz';
import { formatSummary } from './fuzz_target';
import { REQUEST_P1 } from '../support/distcc_golden';

test('live distcc oracle predicts an answer for a whole request and a drop for a truncated or damaged one', () => {
  assert.deepEqual(expectForRequest(REQUEST_P1), { kind: 'answer' });
  assert.deepEqual(expectForRequest(REQUEST_P1.subarray(0, 30)), { kind: 'drop', result: 'CLI_DISCONN' });
  const bad = Buffer.from(REQUEST_P1);
  bad[0] = 0x58;
  const e = expectForRequest(bad);
  assert.equal(e.kind === 'drop' && e.reason?.startsWith('expected token DIST'), true);
});

// The quick run of `npm run fuzz -- --target distcc-live`: bounded in count (400 connections) and time (20 s).
test('distccd on a real socket drops and logs damaged requests as predicted while a good client keeps compiling', async () => {
  const summary = await distccLiveTarget.run({ cases: 400, seed: 20261121, from: 0, timeLimitMs: 20_000 });
  assert.ok(summary.cases >= 100, `only ${summary.cases} connections ran`);
  assert.equal(summary.crashes + summary.hangs + summary.violations, 0, formatSummary(summary));
  assert.ok(Number(summary.extra.dropped_as_predicted) > 0 && Number(summary.extra.good_client_compiles) > 0, formatSummary(summary));
});
