import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestDecoder, type CompileRequest } from '../../../src/compile/wire/request';
import { ResponseDecoder, encodeResponse } from '../../../src/compile/wire/response';
import { decompressLzo } from '../../../src/compile/wire/lzo';
import { encodeBody, encodeInteger, DEFAULT_LIMITS, type Decoded } from '../../../src/compile/wire/tokens';
import { REQUEST_ARGV, REQUEST_P1, REQUEST_P2 } from '../../support/distcc_golden';

/** Feeds `bytes` cut at `cuts`; an ok result also checks that the whole last chunk was used. */
function feed(bytes: Buffer, cuts: number[]): Decoded<CompileRequest> {
  const d = new RequestDecoder();
  let from = 0;
  let last: Decoded<CompileRequest> = { kind: 'incomplete', needed: 1 };
  for (const cut of [...cuts, bytes.length]) {
    const chunk = bytes.subarray(from, cut);
    last = d.push(chunk);
    from = cut;
    if (last.kind === 'ok') {
      assert.equal(last.next, chunk.length);
      return { ...last, next: 0 };
    }
    if (last.kind !== 'incomplete') return last;
  }
  return last;
}

test('RequestDecoder reads the real client protocol-1 request whole, split at every offset and byte by byte', () => {
  const whole = feed(REQUEST_P1, []);
  assert.equal(whole.kind, 'ok');
  const req = whole.kind === 'ok' ? whole.value : undefined;
  assert.deepEqual(req?.argv, REQUEST_ARGV);
  assert.equal(req?.protocol, 1);
  assert.match(req!.doti!.toString(), /int f\(int x\)\{return x\+1;\}/);
  for (let cut = 0; cut <= REQUEST_P1.length; cut++) assert.deepEqual(feed(REQUEST_P1, [cut]), whole, `cut ${cut}`);
  assert.deepEqual(feed(REQUEST_P1, Array.from({ length: REQUEST_P1.length }, (_, i) => i)), whole);
});

test('RequestDecoder reads the real client protocol-2 request and its DOTI decompresses to the source', () => {
  const whole = feed(REQUEST_P2, []);
  assert.equal(whole.kind, 'ok');
  const req = whole.kind === 'ok' ? whole.value : undefined;
  assert.equal(req?.protocol, 2);
  const p1 = feed(REQUEST_P1, []);
  assert.deepEqual(decompressLzo(req!.doti!), p1.kind === 'ok' ? p1.value.doti : undefined);
  for (let cut = 0; cut <= REQUEST_P2.length; cut++) assert.deepEqual(feed(REQUEST_P2, [cut]), whole, `cut ${cut}`);
  assert.deepEqual(feed(REQUEST_P2, Array.from({ length: REQUEST_P2.length }, (_, i) => i)), whole);
});

function pumpRequest(): Buffer {
  return Buffer.concat([
    encodeInteger('DIST', 3), ...encodeBody('CDIR', '/home/u/src'), encodeInteger('ARGC', 3),
    ...encodeBody('ARGV', 'gcc'), ...encodeBody('ARGV', '-c'), ...encodeBody('ARGV', 't.c'),
    encodeInteger('NFIL', 2),
    ...encodeBody('NAME', '/home/u/src/t.c'), ...encodeBody('FILE', Buffer.from('156572720a110000', 'hex')),
    ...encodeBody('NAME', '/usr/include'), ...encodeBody('LINK', '../../../usr/include'),
  ]);
}

test('RequestDecoder reads a protocol-3 request with CDIR, FILE and LINK entries at every split', () => {
  const bytes = pumpRequest();
  const whole = feed(bytes, []);
  assert.equal(whole.kind, 'ok');
  const req = whole.kind === 'ok' ? whole.value : undefined;
  assert.equal(req?.cwd, '/home/u/src');
  assert.deepEqual(req?.files, [
    { kind: 'file', name: '/home/u/src/t.c', body: Buffer.from('156572720a110000', 'hex') },
    { kind: 'link', name: '/usr/include', target: '../../../usr/include' },
  ]);
  for (let cut = 0; cut <= bytes.length; cut++) assert.deepEqual(feed(bytes, [cut]), whole, `cut ${cut}`);
});

test('RequestDecoder refuses DIST above 3, ARGC 0, a NUL in ARGV and a second token out of order', () => {
  const cases: Array<[Buffer, RegExp]> = [
    [encodeInteger('DIST', 9), /DIST 9: unsupported protocol version/],
    [Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 0)]), /ARGC 0: the request has no command line/],
    [Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 99999)]), /ARGC 99999 exceeds the limit of 8192/],
    [Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 1), ...encodeBody('ARGV', 'g\0cc')]), /ARGV contains a NUL byte/],
    [Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 1), ...encodeBody('ARGV', 'gcc'), Buffer.from('FILE')]), /expected token DOTI, got "F"/],
    [Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 1), ...encodeBody('ARGV', Buffer.from([0x2d, 0x44, 0xe9]))]), /ARGV .* is not valid UTF-8/],
    [Buffer.from('GET / HTTP/1.0\r\n\r\n'), /expected token DIST, got "G"/],
  ];
  for (const [bytes, why] of cases) {
    const r = feed(bytes, []);
    assert.equal(r.kind, 'corrupt');
    assert.match(r.kind === 'corrupt' ? r.reason : '', why);
  }
  // The refusal comes as soon as the bad header is complete, without waiting for more.
  assert.equal(feed(encodeInteger('DIST', 9), []).kind, 'corrupt');
});

test('RequestDecoder passes UTF-8 arguments through unchanged', () => {
  const d = new RequestDecoder();
  const r = d.push(Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 2), ...encodeBody('ARGV', 'gcc'), ...encodeBody('ARGV', '-DNAME="é ✓ \ufffd"'), ...encodeBody('DOTI', '')]));
  assert.deepEqual(r.kind === 'ok' && r.value.argv, ['gcc', '-DNAME="é ✓ \ufffd"']);
});

test('RequestDecoder refuses a command line above the total ARGV limit', () => {
  const d = new RequestDecoder({ ...DEFAULT_LIMITS, maxArgvTotal: 10 });
  const r = d.push(Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 3), ...encodeBody('ARGV', 'gcc'), ...encodeBody('ARGV', '-O2'), ...encodeBody('ARGV', '-Wall')]));
  assert.match(r.kind === 'corrupt' ? r.reason : '', /ARGV total length exceeds the limit of 10 bytes/);
});

test('encodeResponse and ResponseDecoder round-trip the doc protocol-2 answer byte for byte', () => {
  const parts = encodeResponse({ version: 2, status: 0x300, stderr: Buffer.from('err\n'), stdout: Buffer.from('out\n'), object: Buffer.from('ignored') });
  const bytes = Buffer.concat(parts);
  const expected = Buffer.concat([
    Buffer.from('DONE00000002STAT00000300SERR00000008'), Buffer.from('156572720a110000', 'hex'),
    Buffer.from('SOUT00000008'), Buffer.from('156f75740a110000', 'hex'), Buffer.from('DOTO00000000'),
  ]);
  assert.deepEqual(bytes, expected);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new ResponseDecoder();
    const a = d.push(bytes.subarray(0, cut));
    const r = a.kind === 'ok' ? a : d.push(bytes.subarray(cut));
    assert.equal(r.kind, 'ok');
    if (r.kind === 'ok') {
      assert.equal(r.value.status, 0x300);
      assert.equal(r.value.stderr.toString(), 'err\n');
      assert.equal(r.value.object.length, 0);
    }
  }
});

test('encodeResponse sends DOTD only in protocol 3 after success', () => {
  const ok = Buffer.concat(encodeResponse({ version: 1, status: 0, stderr: Buffer.alloc(0), stdout: Buffer.alloc(0), object: Buffer.from('OBJ') }));
  assert.equal(ok.toString(), 'DONE00000001STAT00000000SERR00000000SOUT00000000DOTO00000003OBJ');
  const p3 = encodeResponse({ version: 3, status: 0, stderr: Buffer.alloc(0), stdout: Buffer.alloc(0), object: Buffer.from('OBJ'), depfile: Buffer.from('t.o: t.c\n') });
  const d = new ResponseDecoder();
  const r = d.push(Buffer.concat(p3));
  assert.equal(r.kind === 'ok' && r.value.depfile?.toString(), 't.o: t.c\n');
  const failed = Buffer.concat(encodeResponse({ version: 3, status: 256, stderr: Buffer.alloc(0), stdout: Buffer.alloc(0), object: Buffer.alloc(0) }));
  assert.ok(failed.toString('latin1').endsWith('DOTO00000000'));
});

test('RequestDecoder never throws, never exceeds its limits and always ends on random input', () => {
  let seed = 987654;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const pieces = [encodeInteger('DIST', 1), encodeInteger('DIST', 3), encodeInteger('ARGC', 2), ...encodeBody('ARGV', 'gcc'), ...encodeBody('CDIR', '/x'),
    encodeInteger('NFIL', 1), ...encodeBody('NAME', '/x/a.h'), ...encodeBody('FILE', 'zz'), ...encodeBody('DOTI', 'int x;'), Buffer.from('ARGV0000ffff'), Buffer.from([0, 255, 10])];
  const limits = { ...DEFAULT_LIMITS, maxArgvLength: 64, maxDotiLength: 64, maxFileLength: 64 };
  for (let i = 0; i < 2000; i++) {
    const parts: Buffer[] = [];
    const n = 1 + Math.floor(rand() * 10);
    for (let j = 0; j < n; j++) {
      const p = pieces[Math.floor(rand() * pieces.length)]!;
      parts.push(rand() < 0.1 ? p.subarray(0, Math.floor(rand() * p.length)) : p);
    }
    const bytes = Buffer.concat(parts);
    const d = new RequestDecoder(limits);
    let outcome = 'incomplete';
    for (let k = 0; k < bytes.length && outcome === 'incomplete'; ) {
      const step = 1 + Math.floor(rand() * 7);
      outcome = d.push(bytes.subarray(k, k + step)).kind;
      k += step;
    }
    assert.ok(['incomplete', 'corrupt', 'ok'].includes(outcome));
  }
});
