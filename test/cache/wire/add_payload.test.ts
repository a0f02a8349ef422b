import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAddPayload, encodeAddPayload, Status } from '../../../src/cache/wire/index';

function raw(timeout: number, idLength: number, rest: number): Buffer {
  const out = Buffer.alloc(8 + rest, 0x61);
  out.writeUInt32BE(timeout, 0);
  out.writeUInt32BE(idLength, 4);
  return out;
}

function statusOf(payload: Buffer): string | number {
  const r = decodeAddPayload(payload);
  return r.kind === 'rejected' ? r.status : r.kind;
}

test('decodeAddPayload reports short when the payload is under 8 bytes', () => {
  for (let n = 0; n < 8; n++) assert.deepEqual(decodeAddPayload(Buffer.alloc(n)), { kind: 'short', length: n });
});

test('decodeAddPayload applies the C check order when several checks fail at once', () => {
  // timeout beats everything else
  assert.equal(statusOf(raw(604_800_001, 0, 0)), Status.ADD_TIMEOUT_RANGE);
  assert.equal(statusOf(raw(0xffffffff, 65, 1)), Status.ADD_TIMEOUT_RANGE);
  // id_len >= remaining beats the id range check (id_len 0 with nothing left is 0x64, not 0x67)
  assert.equal(statusOf(raw(1000, 0, 0)), Status.ADD_CORRUPT);
  assert.equal(statusOf(raw(1000, 65, 65)), Status.ADD_CORRUPT);
  assert.equal(statusOf(raw(1000, 0xffffffff, 10)), Status.ADD_CORRUPT);
  assert.equal(statusOf(raw(1000, 5, 5)), Status.ADD_CORRUPT);
  // then the id range
  assert.equal(statusOf(raw(1000, 0, 1)), Status.ADD_ID_RANGE);
  assert.equal(statusOf(raw(1000, 65, 66)), Status.ADD_ID_RANGE);
  // the limits themselves are accepted
  assert.equal(statusOf(raw(604_800_000, 64, 65)), 'ok');
  assert.equal(statusOf(raw(0, 1, 2)), 'ok');
});

test('decodeAddPayload returns the timeout, id and data when the payload is valid', () => {
  const payload = encodeAddPayload({ timeoutMs: 300000, id: Buffer.from('0102030405060708', 'hex'), data: Buffer.from('hello-session') });
  assert.equal(payload.toString('hex'), '000493e000000008010203040506070868656c6c6f2d73657373696f6e');
  const r = decodeAddPayload(payload);
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  assert.equal(r.value.timeoutMs, 300000);
  assert.equal(r.value.id.toString('hex'), '0102030405060708');
  assert.equal(r.value.data.toString(), 'hello-session');
});

test('encodeAddPayload refuses payloads that cannot travel in one message', () => {
  assert.throws(() => encodeAddPayload({ timeoutMs: 1, id: Buffer.alloc(1), data: Buffer.alloc(32760) }), /32769 bytes, above the 32768-byte/);
  assert.throws(() => encodeAddPayload({ timeoutMs: -1, id: Buffer.alloc(1), data: Buffer.alloc(1) }), RangeError);
  assert.equal(encodeAddPayload({ timeoutMs: 1, id: Buffer.alloc(1), data: Buffer.alloc(32759) }).length, 32768);
});
