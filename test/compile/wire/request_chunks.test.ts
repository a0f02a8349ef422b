import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RequestDecoder, type CompileRequest, type PumpEntry } from '../../../src/compile/wire/request';
import { SMALL_CHUNK } from '../../../src/compile/wire/packet_buffer';
import { encodeBody, encodeInteger, type Decoded } from '../../../src/compile/wire/tokens';

/** What a client sends; the decoder must give back exactly this. */
type Sent =
  | { readonly version: 0 | 1 | 2; readonly argv: string[]; readonly doti: Uint8Array }
  | { readonly version: 3; readonly cwd: string; readonly argv: string[]; readonly files: PumpEntry[] };

function encode(sent: Sent): Buffer {
  const parts: Buffer[] = [encodeInteger('DIST', sent.version)];
  if (sent.version === 3) parts.push(...encodeBody('CDIR', sent.cwd));
  parts.push(encodeInteger('ARGC', sent.argv.length));
  for (const arg of sent.argv) parts.push(...encodeBody('ARGV', arg));
  if (sent.version !== 3) {
    parts.push(...encodeBody('DOTI', sent.doti));
  } else {
    parts.push(encodeInteger('NFIL', sent.files.length));
    for (const f of sent.files) {
      parts.push(...encodeBody('NAME', f.name));
      parts.push(...(f.kind === 'file' ? encodeBody('FILE', f.body) : encodeBody('LINK', f.target)));
    }
  }
  return Buffer.concat(parts);
}

const text = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\0') && !s.includes('\ufffd') && !/[\ud800-\udfff]/.test(s));
// Bodies from empty to a few KB: shorter and longer than a small chunk, so some lie in one chunk and some span several.
const body = fc.uint8Array({ maxLength: 3 * SMALL_CHUNK });
const entry: fc.Arbitrary<PumpEntry> = fc.oneof(
  fc.record({ kind: fc.constant('file' as const), name: text.map((s) => '/' + s), body: body.map((b) => Buffer.from(b)) }),
  fc.record({ kind: fc.constant('link' as const), name: text.map((s) => '/' + s), target: text }),
).map((e) => ({ ...e })); // plain objects, as the decoder makes (fast-check's records have no prototype)
const sentRequest: fc.Arbitrary<Sent> = fc.oneof(
  fc.record({ version: fc.constantFrom(0 as const, 1 as const, 2 as const), argv: fc.array(text, { minLength: 1, maxLength: 5 }), doti: fc.uint8Array({ maxLength: 6 * SMALL_CHUNK }) }).map((r) => ({ ...r })),
  fc.record({ version: fc.constant(3 as const), cwd: text.map((s) => '/' + s), argv: fc.array(text, { minLength: 1, maxLength: 5 }), files: fc.array(entry, { maxLength: 12 }) }).map((r) => ({ ...r })),
);
/** Cut points as fractions of the stream's length, so they fit whatever length was generated. */
const cutFractions = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 });

function cutsOf(length: number, fractions: readonly number[]): number[] {
  return [...new Set(fractions.map((f) => Math.floor(f * length)))].sort((a, b) => a - b);
}

/** Feeds `bytes` in the chunks that `cuts` make (each a fresh buffer, as a socket gives); the result and how much of the stream was used. */
function feed(bytes: Buffer, cuts: readonly number[]): { readonly result: Decoded<CompileRequest>; readonly used: number } {
  const d = new RequestDecoder();
  let from = 0;
  let result: Decoded<CompileRequest> = { kind: 'incomplete', needed: 1 };
  for (const cut of [...cuts, bytes.length]) {
    if (cut < from) continue;
    result = d.push(Buffer.from(bytes.subarray(from, cut)));
    if (result.kind === 'ok') return { result, used: from + result.next };
    if (result.kind === 'corrupt') return { result, used: -1 };
    from = cut;
  }
  return { result, used: -1 };
}

function expectedOf(sent: Sent): CompileRequest {
  const protocol = sent.version === 3 ? 3 : sent.version === 2 ? 2 : 1;
  return sent.version === 3
    ? { version: 3, protocol: 3, argv: sent.argv, cwd: sent.cwd, files: sent.files }
    : { version: sent.version, protocol: protocol as 1 | 2, argv: sent.argv, doti: Buffer.from(sent.doti) };
}

test('RequestDecoder gives back exactly the request sent when it arrives cut at any chunk boundaries', () => {
  fc.assert(
    fc.property(sentRequest, cutFractions, fc.uint8Array({ maxLength: 40 }), (sent, fractions, trailing) => {
      const bytes = encode(sent);
      const stream = Buffer.concat([bytes, trailing]);
      const { result, used } = feed(stream, cutsOf(stream.length, fractions));
      assert.equal(result.kind, 'ok');
      assert.deepEqual(result.kind === 'ok' ? result.value : undefined, expectedOf(sent));
      assert.equal(used, bytes.length, 'the request ends where its last packet ends, not where the chunk does');
    }),
    { numRuns: 300 },
  );
});

test('RequestDecoder gives the same verdict and reason for a damaged request whatever the chunk boundaries', () => {
  fc.assert(
    fc.property(sentRequest, cutFractions, fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 255 }), (sent, fractions, where, flip) => {
      const bytes = encode(sent);
      bytes[Math.floor(where * bytes.length)]! ^= flip;
      const whole = feed(bytes, []);
      const chunked = feed(bytes, cutsOf(bytes.length, fractions));
      assert.equal(chunked.result.kind, whole.result.kind);
      if (whole.result.kind === 'corrupt' && chunked.result.kind === 'corrupt') assert.equal(chunked.result.reason, whole.result.reason);
      if (whole.result.kind === 'ok' && chunked.result.kind === 'ok') {
        assert.deepEqual(chunked.result.value, whole.result.value);
        assert.equal(chunked.used, whole.used);
      }
    }),
    { numRuns: 300 },
  );
});

test('RequestDecoder returns a file body as a view of its chunk when it lies within one and as one copy when it spans two', () => {
  const a = Buffer.alloc(5000, 0x61);
  const b = Buffer.alloc(7000, 0x62);
  const bytes = encode({ version: 3, cwd: '/src', argv: ['gcc', '-c', 'x.c'], files: [{ kind: 'file', name: '/src/a.h', body: a }, { kind: 'file', name: '/src/b.h', body: b }] });
  const whole = new RequestDecoder().push(bytes);
  assert.ok(whole.kind === 'ok');
  for (const f of whole.value.files!) assert.ok(f.kind === 'file' && f.body.buffer === bytes.buffer, `${f.name} was copied`);
  // Cut in the middle of b's body: a lies in the first chunk, b spans both.
  const cut = bytes.indexOf(b.subarray(0, 100)) + 3000;
  const first = Buffer.from(bytes.subarray(0, cut));
  const second = Buffer.from(bytes.subarray(cut));
  const d = new RequestDecoder();
  assert.equal(d.push(first).kind, 'incomplete');
  const split = d.push(second);
  assert.ok(split.kind === 'ok');
  const [fa, fb] = split.value.files!;
  assert.ok(fa?.kind === 'file' && fa.body.buffer === first.buffer && fa.body.equals(a));
  assert.ok(fb?.kind === 'file' && fb.body.buffer !== first.buffer && fb.body.buffer !== second.buffer && fb.body.equals(b));
});

test('RequestDecoder keeps earlier bodies intact when a large request arrives one byte at a time', () => {
  const files: PumpEntry[] = Array.from({ length: 40 }, (_, i) => ({ kind: 'file', name: `/src/h${i}.h`, body: Buffer.alloc(1500 + i, i) }));
  const bytes = encode({ version: 3, cwd: '/src', argv: ['gcc', '-c', 'x.c'], files });
  const d = new RequestDecoder();
  let result: Decoded<CompileRequest> = { kind: 'incomplete', needed: 1 };
  for (let at = 0; at < bytes.length && result.kind === 'incomplete'; at++) result = d.push(Buffer.from([bytes[at]!]));
  assert.ok(result.kind === 'ok');
  assert.deepEqual(result.value.files, files);
});
