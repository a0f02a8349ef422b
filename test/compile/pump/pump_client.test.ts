import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildPumpRequest, encodePackets, FORCING_FILE, mirrorTarget } from '../../support/pump_client';
import { RequestDecoder, type CompileRequest } from '../../../src/compile/wire/request';
import { decompressLzo } from '../../../src/compile/wire/lzo';
import { scanArgs } from '../../../src/compile/args';
import { PumpTree } from '../../../src/compile/pump/tree';
import { rerootArgs } from '../../../src/compile/pump/argv';
import { cleanDepfile } from '../../../src/compile/pump/depfile';
import { scrubDebugPathsInFile } from '../../../src/compile/pump/dwarf';

const run = promisify(execFile);

/** Reads the request back with the engine's decoder, fed in uneven chunks like a socket would. */
function decode(bytes: Buffer): CompileRequest {
  const decoder = new RequestDecoder();
  for (let at = 0, step = 1; at < bytes.length; at += step, step = (step * 7) % 4093 + 1) {
    const r = decoder.push(bytes.subarray(at, Math.min(bytes.length, at + step)));
    if (r.kind === 'corrupt') assert.fail(r.reason);
    if (r.kind === 'ok') {
      assert.equal(at + r.next, bytes.length, 'the request ends where the bytes end');
      return r.value;
    }
  }
  assert.fail('the decoder wants more bytes than the request has');
}

async function project(): Promise<string> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-pumpsrc-')));
  await fs.mkdir(path.join(dir, 'include'));
  await fs.writeFile(path.join(dir, 'include', 'answer.h'), '#define ANSWER 42\n');
  await fs.writeFile(path.join(dir, 'main.c'), '#include <wordsize.h>\n#include <stdio.h>\n#include "answer.h"\nint main(void) { printf("%d\\n", ANSWER); return 0; }\n');
  return dir;
}

test('buildPumpRequest sends the source, its own headers, system mirror LINKs and forcing files when given a C file', async (t) => {
  const src = await project();
  t.after(() => fs.rm(src, { recursive: true, force: true }));
  const argv = ['gcc', '-Iinclude', '-idirafter', '/usr/include/x86_64-linux-gnu/bits', '-c', 'main.c', '-o', 'main.o'];
  const { packets, files, mirrors } = await buildPumpRequest({ cwd: src, argv });
  assert.deepEqual(files, [path.join(src, 'main.c'), path.join(src, 'include/answer.h')], 'system headers stay on the server');
  assert.ok(mirrors.includes('/usr/include'));
  assert.ok(!mirrors.includes('/usr/include/x86_64-linux-gnu'), 'no mirror under another mirror');
  const wire = encodePackets(packets);
  assert.equal(wire.toString('latin1', 0, 24), 'DIST00000003CDIR' + src.length.toString(16).padStart(8, '0'));
  const request = decode(wire);
  assert.equal(request.protocol, 3);
  assert.equal(request.cwd, src);
  assert.deepEqual(request.argv, argv);
  const links = request.files!.filter((f) => f.kind === 'link');
  assert.deepEqual(links.find((l) => l.name === '/usr/include'), { kind: 'link', name: '/usr/include', target: '../'.repeat(22) + 'usr/include' });
  assert.equal(mirrorTarget('/usr/include'), '../'.repeat(22) + 'usr/include');
  assert.ok(request.files!.some((f) => f.kind === 'file' && f.name.endsWith(`/${FORCING_FILE}`) && f.body.length === 0));
  const answer = request.files!.find((f) => f.name === path.join(src, 'include/answer.h'));
  assert.ok(answer !== undefined && answer.kind === 'file');
  assert.deepEqual(decompressLzo(answer.body), await fs.readFile(path.join(src, 'include/answer.h')));
});

test('the pump modules compile a real pump request when its files are replayed into a PumpTree', async (t) => {
  const src = await project();
  const tree = await PumpTree.create();
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-pumpout-'));
  t.after(async () => {
    await tree.remove();
    await fs.rm(src, { recursive: true, force: true });
    await fs.rm(scratch, { recursive: true, force: true });
  });
  const { packets } = await buildPumpRequest({
    cwd: src,
    // <wordsize.h> exists only in .../bits: found through the re-rooted -idirafter and the mirror
    // link; -fno-canonical-system-headers keeps that path visible in the .d file.
    argv: ['gcc', '-g', `-I${src}/include`, '-idirafter', '/usr/include/x86_64-linux-gnu/bits', '-fno-canonical-system-headers', '-MD', '-c', 'main.c', '-o', 'out/main.o'],
  });
  const request = decode(encodePackets(packets));
  const cwd = await tree.makeCwd(request.cwd!);
  const argv = [...request.argv];
  for (const entry of request.files!) {
    if (entry.kind === 'file') await tree.writeFile(entry.name, decompressLzo(entry.body));
    else await tree.makeLink(entry.name, entry.target);
  }
  await tree.verify();
  assert.equal(
    await fs.readFile(path.join(tree.root, 'usr/include/stdio.h'), 'utf8'),
    await fs.readFile('/usr/include/stdio.h', 'utf8'),
    'the mirror link resolves to the server copy of /usr/include',
  );
  const scanned = scanArgs(argv);
  assert.ok(scanned.ok);
  const output = path.join(scratch, 'server.o');
  const deps = path.join(scratch, 'server.deps');
  const r = rerootArgs(scanned.value, { root: tree.root, output, deps });
  assert.ok(r.argv.includes(`${tree.root}/usr/include/x86_64-linux-gnu/bits`));
  await run('gcc', r.argv.slice(1), { cwd });
  const raw = (await fs.readFile(deps)).toString();
  assert.ok(raw.includes(`${tree.root}/usr/include/x86_64-linux-gnu/bits/wordsize.h`), 'gcc found a header through the re-rooted mirror');
  const clean = cleanDepfile(Buffer.from(raw), { root: tree.root, serverOutput: output, clientTarget: r.mtTarget ?? scanned.value.output }).toString();
  assert.match(clean, /^out\/main\.o:/);
  assert.ok(clean.includes(`${src}/include/answer.h`));
  assert.ok(!clean.includes(tree.root));
  const scrub = await scrubDebugPathsInFile(output, tree.root);
  assert.ok(scrub.replaced > 0);
  const { stdout } = await run('readelf', ['--debug-dump=info,str,line', output], { maxBuffer: 64 << 20 });
  assert.ok(!stdout.includes(tree.root));
});
