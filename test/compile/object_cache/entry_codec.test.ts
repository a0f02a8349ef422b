// The object-cache entry codec: every entry comes back as it went in, and anything but an intact
// entry for its own key (a truncation, a flipped bit, another key) decodes as a miss.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeEntry, encodeEntry, type CacheEntry } from '../../../src/compile/object_cache/entry_codec';

const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
const entry: fc.Arbitrary<CacheEntry> = fc.record({ object: bytes, depfile: fc.option(bytes, { nil: undefined }), stdout: bytes, stderr: bytes });
const key = fc.stringMatching(/^[0-9a-f]{64}$/);

test('decodeEntry gives back what encodeEntry sealed when the entry and key are intact', () => {
  fc.assert(
    fc.property(key, entry, (k, e) => {
      const decoded = decodeEntry(k, encodeEntry(k, e));
      assert.ok(decoded !== undefined);
      assert.deepEqual(decoded.object, e.object);
      assert.deepEqual(decoded.depfile, e.depfile);
      assert.deepEqual(decoded.stdout, e.stdout);
      assert.deepEqual(decoded.stderr, e.stderr);
    }),
  );
});

test('decodeEntry rejects an entry when it is truncated anywhere', () => {
  fc.assert(
    fc.property(key, entry, fc.nat(), (k, e, cut) => {
      const sealed = encodeEntry(k, e);
      assert.equal(decodeEntry(k, sealed.subarray(0, cut % sealed.length)), undefined);
    }),
  );
});

test('decodeEntry rejects an entry when any one bit is flipped', () => {
  fc.assert(
    fc.property(key, entry, fc.nat(), fc.integer({ min: 0, max: 7 }), (k, e, at, bit) => {
      const sealed = Buffer.from(encodeEntry(k, e));
      sealed[at % sealed.length]! ^= 1 << bit;
      assert.equal(decodeEntry(k, sealed), undefined);
    }),
  );
});

test('decodeEntry rejects an entry when it was sealed for another key or has bytes appended', () => {
  fc.assert(
    fc.property(key, key, entry, bytes, (k, other, e, extra) => {
      fc.pre(k !== other);
      assert.equal(decodeEntry(other, encodeEntry(k, e)), undefined);
      if (extra.length > 0) assert.equal(decodeEntry(k, Buffer.concat([encodeEntry(k, e), extra])), undefined);
    }),
  );
});

test('decodeEntry never throws when given arbitrary bytes', () => {
  fc.assert(fc.property(key, fc.uint8Array({ maxLength: 200 }), (k, junk) => assert.equal(decodeEntry(k, Buffer.from(junk)), undefined)));
});
