// Protocol 3 (pump) requests no real client sends, from the hand-made client
// (test/support/pump_client.ts): an escaping NAME is refused with the reason in SERR. Good
// requests come from the real pump client in distccd_pump_real_client.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd, tempDir } from '../support/distccd_harness';
import { sendRaw, type RawAnswer } from '../support/raw_distcc_client';
import { buildPumpRequest, encodePackets } from '../support/pump_client';
import { settledListing } from '../support/settled_listing';

function answered(a: RawAnswer): Extract<RawAnswer, { kind: 'answer' }>['response'] {
  assert.equal(a.kind, 'answer', JSON.stringify(a));
  return (a as Extract<RawAnswer, { kind: 'answer' }>).response;
}

async function setup(t: Parameters<typeof tempDir>[0]): Promise<{ src: string; masq: string; tmp: string }> {
  const dir = tempDir(t, 'distkit-pump-');
  const src = path.join(dir, 'src');
  await fs.mkdir(path.join(src, 'include'), { recursive: true });
  await fs.mkdir(path.join(src, 'out'));
  await fs.writeFile(path.join(src, 'include/answer.h'), '#define ANSWER 42\n');
  await fs.writeFile(path.join(src, 'main.c'), '#include <stdio.h>\n#include "answer.h"\nint main(void) { printf("%d\\n", ANSWER); return 0; }\n');
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  const tmp = path.join(dir, 'tmp');
  await fs.mkdir(tmp);
  return { src, masq, tmp };
}

test('distccd refuses a protocol-3 request whose NAME escapes the tree with the reason in SERR', async (t) => {
  const { src, masq, tmp } = await setup(t);
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp } });
  const victim = path.join(tmp, '..', 'victim.txt');
  const { packets } = await buildPumpRequest({ cwd: src, argv: ['gcc', `-I${src}/include`, '-c', 'main.c', '-o', 'main.o'], pumpExtras: false });
  // Add one more FILE whose NAME climbs out of the root.
  const nfil = packets.findIndex((p) => p.token === 'NFIL');
  const evil = [...packets];
  evil[nfil] = { token: 'NFIL', value: packets[nfil]!.value! + 1 };
  evil.push({ token: 'NAME', body: Buffer.from(`/../../../../../../..${victim}`) }, { token: 'FILE', body: Buffer.alloc(0) });
  const r = answered(await sendRaw(d.port, encodePackets(evil)));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr.toString(), /^distccd\[\d+\] ERROR: /);
  await assert.rejects(fs.access(victim));
  await d.waitFor(/job refused /);
  assert.deepEqual(await settledListing(tmp), []);
});
