// Protocol 3 (pump) through our distccd, from a raw client that sends what distcc-pump sends
// (Debian's include server is broken on Python 3.11, so the real pump silently falls back to
// protocol 2): the tree is rebuilt privately, the object and the cleaned .d come back, no temp
// path leaks, an escaping NAME is refused with the reason in SERR.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd, tempDir } from '../support/distccd_harness';
import { sendRaw, type RawAnswer } from '../support/raw_distcc_client';
import { buildPumpRequest, encodePackets } from '../support/pump_client';
import { settledListing } from '../support/settled_listing';

const run = promisify(execFile);

function answered(a: RawAnswer): Extract<RawAnswer, { kind: 'answer' }>['response'] {
  assert.equal(a.kind, 'answer', JSON.stringify(a));
  return (a as Extract<RawAnswer, { kind: 'answer' }>).response;
}

async function setup(t: Parameters<typeof tempDir>[0]): Promise<{ src: string; masq: string; tmp: string }> {
  const dir = await tempDir(t, 'distkit-pump-');
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

test('distccd compiles a protocol-3 request in a private tree and answers DOTO and a clean DOTD', async (t) => {
  const { src, masq, tmp } = await setup(t);
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp } });
  const argv = ['gcc', '-g', `-I${src}/include`, '-MD', '-c', 'main.c', '-o', 'out/main.o'];
  const { packets } = await buildPumpRequest({ cwd: src, argv });
  const r = answered(await sendRaw(d.port, encodePackets(packets)));
  assert.equal(r.version, 3);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.ok(r.object.length > 0);
  const dotd = r.depfile!.toString();
  assert.match(dotd, /^out\/main\.o: main\.c .*\/include\/answer\.h/s);
  assert.ok(dotd.includes(`${src}/include/answer.h`));
  assert.ok(!dotd.includes(tmp), 'no temp path in the .d file');
  await d.waitFor(/request .*protocol=3/);
  await d.waitFor(/COMPILE_OK exit:0 sig:0 core:0 ret:0 time:\d+ms gcc main\.c$/);
  // No temp root in the debug info either (gcc 12 puts the compile dir in .debug_line_str).
  const obj = path.join(src, 'out/main.o');
  await fs.writeFile(obj, r.object);
  const { stdout } = await run('readelf', ['--debug-dump=info,str,line', obj], { maxBuffer: 64 << 20 });
  assert.ok(!stdout.includes(tmp));
  assert.ok(stdout.includes(src), 'the client directory is what the debugger sees');
  assert.deepEqual(await settledListing(tmp), [], 'the tree and temp files are removed');
});

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
