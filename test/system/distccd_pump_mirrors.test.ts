// Protocol 3 (pump) requests no real client sends, built with test/support/pump_client.ts: hostile
// NAMEs and LINKs are refused and leave nothing outside the job tree. A good request with the
// include server's system mirror links comes from the real pump client in
// distccd_pump_real_client.test.ts.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd, tempDir, type RunningDistccd } from '../support/distccd_harness';
import { sendRaw } from '../support/raw_distcc_client';
import { encodePackets, mirrorTarget, type PumpPacket } from '../support/pump_client';
import { compressLzo } from '../../src/compile/wire/lzo';
import { settledListing } from '../support/settled_listing';

async function setup(t: TestContext): Promise<{ dir: string; src: string; tmp: string; port: number; waitFor: RunningDistccd['waitFor'] }> {
  const dir = await fs.realpath(tempDir(t, 'distkit-pump-sys-'));
  const src = path.join(dir, 'src');
  await fs.mkdir(path.join(src, 'include'), { recursive: true });
  await fs.writeFile(path.join(src, 'include', 'answer.h'), '#define ANSWER 42\n');
  await fs.writeFile(path.join(src, 'main.c'), '#include <wordsize.h>\n#include <stdio.h>\n#include "answer.h"\nint main(void) { printf("%d %d\\n", ANSWER, __WORDSIZE); return 0; }\n');
  const tmp = path.join(dir, 'tmp');
  await fs.mkdir(tmp);
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp } });
  // The summary line follows the temp files' removal, after the answer: wait for it.
  return { dir, src, tmp, port: d.port, waitFor: d.waitFor };
}

/** DIST 3 with a trivial compile and the given NAME entries. */
function hostile(cwd: string, entries: PumpPacket[]): Buffer {
  const argv = ['gcc', '-c', 'x.c', '-o', 'x.o'];
  const files: PumpPacket[] = [
    { token: 'NAME', body: Buffer.from(`${cwd}/x.c`) }, { token: 'FILE', body: compressLzo(Buffer.from('int x;\n')) }, ...entries,
  ];
  return encodePackets([
    { token: 'DIST', value: 3 }, { token: 'CDIR', body: Buffer.from(cwd) }, { token: 'ARGC', value: argv.length },
    ...argv.map((a): PumpPacket => ({ token: 'ARGV', body: Buffer.from(a) })),
    { token: 'NFIL', value: files.filter((e) => e.token === 'NAME').length },
    ...files,
  ]);
}

function entry(name: string, kind: 'FILE' | 'LINK', body: string): PumpPacket[] {
  return [{ token: 'NAME', body: Buffer.from(name) }, { token: kind, body: kind === 'FILE' ? compressLzo(Buffer.from(body)) : Buffer.from(body) }];
}

test('distccd refuses protocol 3 NAMEs and LINKs when they would write outside the job tree', async (t) => {
  const { dir, src, tmp, port, waitFor } = await setup(t);
  const victim = path.join(dir, 'victim');
  await fs.mkdir(victim);
  const attacks: Array<[string, PumpPacket[]]> = [
    ['dot-dot NAME', entry('/' + '../'.repeat(30) + victim.slice(1) + '/pwned', 'FILE', 'pwned')],
    ['LINK then FILE', [...entry('/esc', 'LINK', '../'.repeat(30) + victim.slice(1)), ...entry('/esc/pwned', 'FILE', 'pwned')]],
    ['mirror then FILE', [...entry(victim, 'LINK', mirrorTarget(victim)), ...entry(`${victim}/pwned`, 'FILE', 'pwned')]],
    ['absolute link of another tree', [...entry('/abs', 'LINK', '/../../..' + victim), ...entry('/abs/pwned', 'FILE', 'pwned')]],
  ];
  for (const [what, entries] of attacks) {
    const answer = await sendRaw(port, hostile(src, entries));
    if (answer.kind === 'answer') assert.notEqual(answer.response.status, 0, what);
    assert.deepEqual(await fs.readdir(victim), [], `${what}: nothing written outside the tree`);
  }
  await waitFor(/climbs above the job tree/);
  assert.deepEqual(await settledListing(tmp), [], 'every job tree was removed');
});
