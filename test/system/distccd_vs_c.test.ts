// Byte-for-byte: the same raw requests sent to Debian's C distccd 3.4 and to ours get identical
// answers (DONE STAT SERR SOUT DOTO, LZO bodies included) for a success and a compiler error in
// protocols 1 and 2. The objects match because both compile the same .i with the same gcc.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { makeMasqueradeDir, startCDistccd, startDistccd, tempDir } from '../support/distccd_harness';
import { encodeRequest } from '../support/raw_distcc_client';
import { REQUEST_P1, REQUEST_P2 } from '../support/distcc_golden';
import { buildPumpRequest, encodePackets } from '../support/pump_client';
import fs from 'node:fs/promises';

/** Sends a request and returns every byte until the server closes. */
function exchange(port: number, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    const timer = setTimeout(() => { s.destroy(); reject(new Error('no answer within 30 s')); }, 30_000);
    s.on('data', (d) => chunks.push(d));
    s.once('error', reject);
    s.once('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); });
  });
}

test('distccd answers exactly the bytes Debian C distccd answers when given the same requests', async (t) => {
  const { port: cPort } = await startCDistccd(t, { args: ['--jobs', '2'] });
  const dir = tempDir(t, 'distkit-vs-c-');
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  // A protocol-3 request as distcc-pump sends it (mirror links, forcing files), without -g: the C
  // server leaks its temp root into DWARF, so only objects without debug info can match.
  const src = path.join(dir, 'src');
  await fs.mkdir(path.join(src, 'include'), { recursive: true });
  await fs.writeFile(path.join(src, 'include/answer.h'), '#define ANSWER 42\n');
  await fs.writeFile(path.join(src, 'main.c'), '#include <stdio.h>\n#include "answer.h"\nint main(void) { printf("%d\\n", ANSWER); return 0; }\n');
  const pump = encodePackets((await buildPumpRequest({ cwd: src, argv: ['x86_64-linux-gnu-gcc', `-I${src}/include`, '-MD', '-c', 'main.c', '-o', 'main.o'] })).packets);
  const ours = await startDistccd(t, { compilerDir: masq });
  const broken = '# 1 "bad.c"\nint broken(void) { return 1 }\n';
  const requests: Array<[string, Buffer]> = [
    ['protocol 1 success (captured from the real client)', REQUEST_P1],
    ['protocol 2 success (captured from the real client)', REQUEST_P2],
    ['protocol 1 compiler error', encodeRequest(1, ['x86_64-linux-gnu-gcc', '-c', 'bad.c', '-o', 'bad.o'], broken)],
    ['protocol 2 compiler error', encodeRequest(2, ['x86_64-linux-gnu-gcc', '-c', 'bad.c', '-o', 'bad.o'], broken)],
    ['protocol 2 -S output', encodeRequest(2, ['x86_64-linux-gnu-gcc', '-S', 't.c', '-o', 't.s'], '# 1 "t.c"\nint g(int y) { return y * 3; }\n')],
    ['protocol 3 with a .d file', pump],
  ];
  for (const [what, request] of requests) {
    const theirs = await exchange(cPort, request);
    const mine = await exchange(ours.port, request);
    assert.ok(theirs.length > 24, `${what}: C distccd answered ${JSON.stringify(theirs.toString('latin1'))}`);
    assert.deepEqual(mine.toString('latin1'), theirs.toString('latin1'), what);
  }
});
