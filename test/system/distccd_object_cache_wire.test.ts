// A hit answers byte for byte what the compile answered on the wire, in protocols 1, 2 and 3:
// entries of protocols 2 and 3 hold their parts LZO-compressed as sent, and a hit sends them as
// they are, so the test compares the raw answers (not what a decoder makes of them).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { jobTree, startDistccd } from '../support/distccd_harness';
import { buildPumpRequest, encodePackets } from '../support/pump_client';
import { encodeRequest } from '../support/raw_distcc_client';
import { ResponseDecoder } from '../../src/compile/wire/response';

const SOURCE = '#include <stdio.h>\nint main(void) { int unused = 1; printf("%d\\n", 42); return 0; }\n';

/** The raw bytes of the answer to `request`, up to the server's close. */
function rawAnswer(port: number, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ port, host: '127.0.0.1' }, () => socket.write(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

test('distccd answers a hit with the bytes of the compile that stored it when the job comes in protocol 1, 2 or 3', async (t) => {
  const { masq, tmp, root } = await jobTree(t, 'distkit-objcache-wire-');
  const src = path.join(root, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 't.c'), SOURCE);
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp }, args: ['--cache-dir', path.join(root, 'cache')] });
  const argv = ['gcc', '-Wall', '-O2', '-c', 't.c', '-o', 't.o'];
  // Protocols 1 and 2 send the preprocessed source, as the client does after its cpp.
  const doti = execFileSync('gcc', ['-E', 't.c'], { cwd: src });
  const requests: Record<string, Buffer> = {
    '1': encodeRequest(1, argv, doti),
    '2': encodeRequest(2, argv, doti),
    '3': encodePackets((await buildPumpRequest({ cwd: src, argv })).packets),
  };
  let jobs = 0;
  for (const [protocol, request] of Object.entries(requests)) {
    const miss = await rawAnswer(d.port, request);
    await d.waitForCount(/ cache:\w+$/, ++jobs);
    const hit = await rawAnswer(d.port, request);
    await d.waitForCount(/ cache:\w+$/, ++jobs);
    assert.match(miss.toString('latin1', 0, 24), new RegExp(`^DONE0000000${protocol}STAT00000000`), `protocol ${protocol}: the compile succeeded`);
    const decoded = new ResponseDecoder().push(hit);
    assert.ok(decoded.kind === 'ok' && decoded.value.stderr.toString().includes('unused'), `protocol ${protocol}: the hit has the compile's warning`);
    assert.ok(hit.equals(miss), `protocol ${protocol}: the hit's ${hit.length} bytes are the compile's ${miss.length}`);
  }
  const states = d.lines.filter((l) => / cache:\w+$/.test(l)).map((l) => / cache:(\w+)$/.exec(l)![1]);
  assert.deepEqual(states, ['miss', 'hit', 'miss', 'hit', 'miss', 'hit']);
});
