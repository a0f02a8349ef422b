// Regression (found by `npm run fuzz -- --target distcc-live --cases 150000 --seed 5150`: a
// distccd_<random>.o left in TMPDIR): options that make gcc write files beside its input or
// output (-save-temps, -gsplit-dwarf, -fstack-usage, -fcallgraph-info) left them in TMPDIR for
// ever, and -fopt-info-...=FILE wrote optimization notes wherever the client said.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { jobTree, startDistccd } from '../support/distccd_harness';
import { encodeRequest, sendRaw } from '../support/raw_distcc_client';
import { settledListing } from '../support/settled_listing';

const SOURCE = 'int f(void){return 1;}\n';

test('distccd leaves no side file in TMPDIR when gcc options write files beside the temp input or output', async (t) => {
  const { tmp, masq } = await jobTree(t, 'distkit-side-');
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp } });
  for (const option of ['-save-temps', '-gsplit-dwarf', '-fstack-usage', '-fcallgraph-info']) {
    const a = await sendRaw(d.port, encodeRequest(1, ['gcc', option, '-c', 't.c', '-o', 't.o'], SOURCE));
    assert.ok(a.kind === 'answer' && a.response.status === 0, option);
    assert.deepEqual(await settledListing(tmp), [], option);
  }
});

test('distccd refuses -fopt-info=FILE when the client names where optimization notes go', async (t) => {
  const { root, tmp, masq } = await jobTree(t, 'distkit-optinfo-');
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp } });
  const target = path.join(root, 'notes.txt');
  const a = await sendRaw(d.port, encodeRequest(1, ['gcc', '-O2', `-fopt-info-all=${target}`, '-c', 't.c', '-o', 't.o'], SOURCE));
  assert.ok(a.kind === 'answer');
  assert.equal(a.response.status, 101 << 8);
  assert.match(a.response.stderr.toString(), /-fopt-info-all=.* writes optimization notes at a path the client names/);
  await assert.rejects(fs.access(target), /ENOENT/);
  assert.deepEqual(await settledListing(tmp), []);
});
