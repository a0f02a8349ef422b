import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distccWireTarget } from './distcc_wire_fuzz';
import { formatSummary } from './fuzz_target';

// The quick run of `npm run fuzz -- --target distcc`: bounded in count (4000 cases) and time (8 s).
test('distcc token codec survives damaged protocol 1, 2 and 3 requests and answers without a crash, hang or broken limit', async () => {
  const summary = await distccWireTarget.run({ cases: 4000, seed: 20261121, from: 0, timeLimitMs: 8000 });
  assert.ok(summary.cases >= 1000, `only ${summary.cases} cases ran`);
  assert.equal(summary.crashes + summary.hangs + summary.violations, 0, formatSummary(summary));
  // The damaged streams reach every verdict (the fuzzer is not only feeding garbage).
  assert.ok(Number(summary.extra.streams_ok) > 0 && Number(summary.extra.streams_corrupt) > 0 && Number(summary.extra.streams_incomplete) > 0, formatSummary(summary));
});
