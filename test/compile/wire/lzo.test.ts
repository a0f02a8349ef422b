import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressLzo, decompressLzo } from '../../../src/compile/wire/lzo';
import { DistkitError } from '../../../src/errors';

test('compressLzo matches the LZO1X-1 bytes of the doc for a 4-byte body', () => {
  assert.equal(compressLzo(Buffer.from('err\n')).toString('hex'), '156572720a110000');
  assert.equal(compressLzo(Buffer.from('out\n')).toString('hex'), '156f75740a110000');
});

test('compressLzo and decompressLzo treat an empty body as empty', () => {
  assert.equal(compressLzo(Buffer.alloc(0)).length, 0);
  assert.equal(decompressLzo(Buffer.alloc(0)).length, 0);
});

test('decompressLzo grows its buffer when a body expands more than 8x', () => {
  const data = Buffer.alloc(1024 * 1024, 'a'); // compresses ~250x
  const packed = compressLzo(data);
  assert.ok(packed.length * 8 < data.length);
  assert.deepEqual(decompressLzo(packed), data);
  const text = Buffer.from(Array.from({ length: 5000 }, (_, i) => `line ${i} of some source;\n`).join(''));
  assert.deepEqual(decompressLzo(compressLzo(text)), text);
});

test('decompressLzo refuses output beyond its maximum', () => {
  const packed = compressLzo(Buffer.alloc(100000));
  assert.throws(() => decompressLzo(packed, { maxOutput: 50000 }), (e: unknown) =>
    e instanceof DistkitError && e.code === 'lzo-too-large' && /beyond the limit of 50000 bytes/.test(e.message));
});

test('decompressLzo refuses corrupt and truncated streams', () => {
  const packed = compressLzo(Buffer.from('hello hello hello hello hello world'));
  for (const bad of [packed.subarray(0, packed.length - 2), Buffer.from('ffffffffff', 'hex'), Buffer.concat([packed, Buffer.from([1, 2, 3])])]) {
    assert.throws(() => decompressLzo(bad), (e: unknown) => e instanceof DistkitError && e.code === 'lzo-corrupt');
  }
});
