import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodePacket, encodeBody, encodeHeader, encodeInteger, DEFAULT_LIMITS, type Packet, type Token,
} from '../../../src/compile/wire/tokens';

const RESPONSE_TOKENS: Token[][] = [['DONE'], ['STAT'], ['SERR'], ['SOUT'], ['DOTO']];

/** Decodes packets in order; on a prefix it returns what completed plus the final outcome. */
function decodeSequence(bytes: Buffer, steps: Token[][]): { packets: Packet[]; last: string } {
  const packets: Packet[] = [];
  let offset = 0;
  for (const expected of steps) {
    const r = decodePacket(bytes, offset, expected);
    if (r.kind !== 'ok') return { packets, last: r.kind };
    packets.push(r.value);
    offset = r.next;
  }
  return { packets, last: offset === bytes.length ? 'ok' : 'trailing' };
}

test('encodeHeader writes the token and 8 lowercase hex digits', () => {
  assert.equal(encodeHeader('DOTO', 0x448).toString(), 'DOTO00000448');
  assert.equal(encodeInteger('STAT', 0x6e00).toString(), 'STAT00006e00');
  assert.equal(encodeInteger('DONE', 0xffffffff).toString(), 'DONEffffffff');
  assert.throws(() => encodeHeader('ARGC', -1), RangeError);
  assert.throws(() => encodeHeader('ARGC', 2 ** 32), RangeError);
  assert.deepEqual(encodeBody('SERR', ''), [Buffer.from('SERR00000000')]);
  assert.equal(Buffer.concat(encodeBody('ARGV', 'gcc')).toString(), 'ARGV00000003gcc');
});

test('decodePacket reads the protocol-1 success answer of the doc when whole, split and byte by byte', () => {
  const object = Buffer.alloc(0x448, 0xab);
  const bytes = Buffer.concat([Buffer.from('DONE00000001STAT00000000SERR00000000SOUT00000000DOTO00000448'), object]);
  const whole = decodeSequence(bytes, RESPONSE_TOKENS);
  assert.equal(whole.last, 'ok');
  assert.deepEqual(whole.packets.map((p) => [p.token, p.param]), [['DONE', 1], ['STAT', 0], ['SERR', 0], ['SOUT', 0], ['DOTO', 0x448]]);
  assert.deepEqual(whole.packets[4].body, object);
  for (let cut = 0; cut < bytes.length; cut++) {
    const part = decodeSequence(bytes.subarray(0, cut), RESPONSE_TOKENS);
    assert.equal(part.last, 'incomplete', `prefix of ${cut} bytes`);
    assert.deepEqual(part.packets, whole.packets.slice(0, part.packets.length));
  }
});

test('decodePacket reads the protocol-2 answer of the doc with LZO bodies', () => {
  const hex = Buffer.from('DONE00000002STAT00000300SERR00000008').toString('hex') + '156572720a110000' +
    Buffer.from('SOUT00000008').toString('hex') + '156f75740a110000' + Buffer.from('DOTO00000000').toString('hex');
  const bytes = Buffer.from(hex, 'hex');
  const r = decodeSequence(bytes, RESPONSE_TOKENS);
  assert.equal(r.last, 'ok');
  assert.equal(r.packets[1].param, 0x300);
  assert.equal(r.packets[2].body!.toString('hex'), '156572720a110000');
  assert.equal(r.packets[4].param, 0);
  for (let cut = 0; cut < bytes.length; cut++) assert.equal(decodeSequence(bytes.subarray(0, cut), RESPONSE_TOKENS).last, 'incomplete');
});

test('decodePacket accepts uppercase hex digits', () => {
  const r = decodePacket(Buffer.from('STAT00006E00'), 0, ['STAT']);
  assert.equal(r.kind === 'ok' && r.value.param, 0x6e00);
});

test('decodePacket refuses at the first byte that cannot start an expected token', () => {
  for (const [text, why] of [
    ['X', /expected token DIST, got "X"/],
    ['DIX', /got "DIX"/],
    ['DIST0000000g', /bad hex digit in DIST header "DIST0000000g"/],
    ['DIST 0000001', /bad hex digit/],
    ['DIST+', /bad hex digit/],
  ] as const) {
    const r = decodePacket(Buffer.from(text), 0, ['DIST']);
    assert.equal(r.kind, 'corrupt', text);
    assert.match(r.kind === 'corrupt' ? r.reason : '', why);
  }
  const either = decodePacket(Buffer.from('LIN'), 0, ['FILE', 'LINK']);
  assert.equal(either.kind, 'incomplete');
  const neither = decodePacket(Buffer.from('FX'), 0, ['FILE', 'LINK']);
  assert.match(neither.kind === 'corrupt' ? neither.reason : '', /expected token FILE or LINK, got "FX"/);
});

test('decodePacket refuses a length above its named limit before waiting for the body', () => {
  const limits = { ...DEFAULT_LIMITS, maxArgvLength: 16 };
  assert.equal(decodePacket(Buffer.from('ARGV00000010'), 0, ['ARGV'], limits).kind, 'incomplete');
  const r = decodePacket(Buffer.from('ARGV00000011'), 0, ['ARGV'], limits);
  assert.match(r.kind === 'corrupt' ? r.reason : '', /ARGV length 17 exceeds the limit of 16 bytes/);
  const huge = decodePacket(Buffer.from('DOTIffffffff'), 0, ['DOTI']);
  assert.match(huge.kind === 'corrupt' ? huge.reason : '', /DOTI length 4294967295 exceeds the limit/);
});

test('decodePacket reports how many bytes are still needed when incomplete', () => {
  const r = decodePacket(Buffer.from('ARGV00000005gc'), 0, ['ARGV']);
  assert.deepEqual(r, { kind: 'incomplete', needed: 3 });
  assert.deepEqual(decodePacket(Buffer.from('AR'), 0, ['ARGV']), { kind: 'incomplete', needed: 10 });
});

test('decodePacket never throws or overreads on random bytes', () => {
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alphabet = Buffer.from('DISTARGVDOTIFILELINK0123456789abcdefABCDEF\x00\xff ');
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(rand() * 40);
    const bytes = Buffer.alloc(len);
    for (let j = 0; j < len; j++) bytes[j] = rand() < 0.8 ? alphabet[Math.floor(rand() * alphabet.length)] : Math.floor(rand() * 256);
    const r = decodePacket(bytes, 0, ['DIST', 'ARGV', 'DOTI', 'FILE', 'LINK'], { ...DEFAULT_LIMITS, maxArgvLength: 20 });
    if (r.kind === 'ok') assert.ok(r.next > 0 && r.next <= bytes.length);
    if (r.kind === 'incomplete') assert.ok(r.needed > 0 && r.needed <= 12 + 20);
  }
});
