// Protocol 3 (pump) end to end through our distccd: test/support/pump_client.ts builds what the
// real pump client sends (Debian's include server is broken on Python 3.11), the raw client reads
// the answer. A good request compiles with the include server's system mirror links; hostile
// NAMEs and LINKs are refused and leave nothing outside the job tree.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd, tempDir, type RunningDistccd } from '../support/distccd_harness';
import { sendRaw, type RawAnswer } from '../support/raw_distcc_client';
import { buildPumpRequest, encodePackets, mirrorTarget, type PumpPacket } from '../support/pump_client';
import { compressLzo } from '../../src/compile/wire/lzo';
import { settledListing } from '../support/settled_listing';

const run = promisify(execFile);

async function setup(t: TestContext): Promise<{ dir: string; src: string; tmp: string; port: number; waitFor: RunningDistccd['waitFor'] }> {
  const dir = await fs.realpath(await tempDir(t, 'distkit-pump-sys-'));
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

test('distccd compiles a protocol 3 request when it carries the include server mirror links', async (t) => {
  const { dir, src, tmp, port, waitFor } = await setup(t);
  const argv = ['gcc', '-g', '-Iinclude', '-idirafter', '/usr/include/x86_64-linux-gnu/bits', '-MD', '-c', 'main.c', '-o', 'out/main.o'];
  const { packets } = await buildPumpRequest({ cwd: src, argv });
  const answer = await sendRaw(port, encodePackets(packets));
  assert.equal(answer.kind, 'answer', JSON.stringify(answer));
  const r = (answer as Extract<RawAnswer, { kind: 'answer' }>).response;
  assert.equal(r.status, 0, r.stderr.toString());
  assert.equal(r.version, 3);
  const depfile = r.depfile!.toString();
  assert.match(depfile, /^out\/main\.o: main\.c /);
  assert.ok(depfile.includes('include/answer.h'));
  assert.ok(!depfile.includes('distccd-pump-'), depfile);
  const object = path.join(dir, 'main.o');
  await fs.writeFile(object, r.object);
  const { stdout: dump } = await run('readelf', ['--debug-dump=info,str,line', object], { maxBuffer: 64 << 20 });
  assert.ok(!dump.includes(tmp), 'no server temp path in the debug info');
  await run('gcc', [object, '-o', path.join(dir, 'main')]);
  assert.equal((await run(path.join(dir, 'main'), [])).stdout, '42 64\n');
  await waitFor(/COMPILE_OK/);
  assert.deepEqual(await settledListing(tmp), [], 'the job tree and temp files are gone');
});

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
