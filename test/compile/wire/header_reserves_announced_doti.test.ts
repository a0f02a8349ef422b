import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestDecoder } from '../../../src/compile/wire/request';
import { encodeBody, encodeInteger } from '../../../src/compile/wire/tokens';
import { runDistccWireCase } from '../../fuzz/distcc_wire_fuzz';

const HEADER_ONLY = Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 1), ...encodeBody('ARGV', 'gcc'), Buffer.from('DOTI10000000')]);

// Found by `npm run fuzz -- --target distcc` (seed 20261121, cases 107392, 334720, 437632, 800000:
// 2.3 to 7.2 s each): a 12-byte DOTI header announcing 256 MiB made the decoder allocate 256 MiB.
test('PacketBuffer reserves memory in proportion to the bytes received when a header announces a 256 MiB DOTI', () => {
  const before = process.memoryUsage().arrayBuffers;
  const decoders = Array.from({ length: 32 }, () => new RequestDecoder());
  for (const d of decoders) assert.equal(d.push(HEADER_ONLY).kind, 'incomplete');
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 16 * 1024 * 1024, `32 announced DOTI bodies reserved ${grown} bytes before any body byte arrived`);
});

test('PacketBuffer still reads a large body sent in small chunks when it grows step by step', () => {
  const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  const request = Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 1), ...encodeBody('ARGV', 'gcc'), ...encodeBody('DOTI', body)]);
  const d = new RequestDecoder();
  let r;
  for (let at = 0; at < request.length; at += 4096) r = d.push(request.subarray(at, at + 4096));
  assert.ok(r?.kind === 'ok' && r.value.doti?.equals(body));
});

test('distcc codec fuzz cases that announced 256 MiB DOTIs pass when replayed', () => {
  for (const index of [107392, 334720, 437632, 800000]) assert.equal(runDistccWireCase(20261121, index).kind, 'pass', `case ${index}`);
});
