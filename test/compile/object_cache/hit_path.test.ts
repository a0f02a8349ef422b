// What makes a hit cheap must not change what a hit answers: the pump bodies' digest memo gives
// exactly what hashing gives (so a key is the same with the memo or without, whatever it holds),
// and stays within its bound; the key reads a pump body as sent (compressed) apart from the same
// bytes uncompressed; a pump tree is searched for the server's clock only when no entry is found,
// each file's content once, and a job that reads it is never stored and says `cache:off`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import { BodyDigests, sha256Of } from '../../../src/compile/object_cache/body_digests';
import { cacheKey, type KeyInput } from '../../../src/compile/object_cache/cache_key';
import { DiskStore } from '../../../src/compile/object_cache/disk_store';
import { isIntactEntry, type CacheEntry } from '../../../src/compile/object_cache/entry_codec';
import { mentionsClock, ObjectCache, type CacheState, type JobKeyInput } from '../../../src/compile/object_cache/object_cache';
import { createLogger } from '../../../src/log/index';
import { tempDir } from '../../support/temp_dir';

const log = createLogger('t', { level: 'emerg' });
const ENV = { PATH: '/usr/bin:/bin' };

const name = fc.constantFrom('/usr/include/stdio.h', '/usr/include/math.h', '/p/a.h', '/p/b.h');
const body = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

test('BodyDigests gives the SHA-256 of the body when the name was seen with the same, other or no bytes', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(name, body), { maxLength: 40 }), fc.integer({ min: 0, max: 200 }), (calls, maxBytes) => {
      const digests = new BodyDigests({ maxBytes });
      for (const [n, b] of calls) {
        assert.deepEqual(digests.digestOf(n, b), sha256Of(b));
        assert.ok(digests.bytes <= maxBytes, `${digests.bytes} bytes remembered over ${maxBytes}`);
      }
    }),
  );
});

test('BodyDigests does not take a body changed in place for the one it remembered when the caller reuses its buffer', () => {
  const digests = new BodyDigests();
  const shared = Buffer.from('#define ANSWER 42\n');
  const first = digests.digestOf('/p/a.h', shared);
  shared.write('3', 16);
  assert.notDeepEqual(digests.digestOf('/p/a.h', shared), first);
  assert.deepEqual(digests.digestOf('/p/a.h', shared), sha256Of(Buffer.from('#define ANSWER 43\n')));
});

const TREE_BASE: KeyInput = { compiler: 'c'.repeat(64), protocol: 3, argv: ['gcc', '-c', 't.c'], cwd: '/p', tmpDir: '/tmp', env: { PATH: '/usr/bin' } };

test('cacheKey of a pump tree is the same with a digest memo as without when the memo has seen other bodies under the same names', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(name, body), { minLength: 1, maxLength: 8 }), fc.array(fc.tuple(name, body), { maxLength: 8 }), (tree, before) => {
      const files = tree.map(([n, b]) => ({ kind: 'file' as const, name: n, body: b, lzo: true }));
      const digests = new BodyDigests({ maxBytes: 256 });
      for (const [n, b] of before) digests.digestOf(n, b);
      const key = cacheKey({ ...TREE_BASE, files });
      assert.equal(cacheKey({ ...TREE_BASE, files }, digests), key);
      assert.equal(cacheKey({ ...TREE_BASE, files }, digests), key, 'and again, from the memo');
    }),
  );
});

test('cacheKey tells a pump body as sent from the same bytes uncompressed and from another body when the tree is otherwise the same', () => {
  const file = (b: string, lzo?: boolean) => ({ kind: 'file' as const, name: '/p/t.c', body: Buffer.from(b), lzo });
  const keys = [cacheKey({ ...TREE_BASE, files: [file('int x;')] }), cacheKey({ ...TREE_BASE, files: [file('int x;', true)] }), cacheKey({ ...TREE_BASE, files: [file('int y;', true)] })];
  assert.equal(new Set(keys).size, 3);
});

test('cacheKey gives two argument vectors one key only when they are the same when arguments are long, empty or not ASCII', () => {
  const arg = fc.oneof(fc.string({ maxLength: 4 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ minLength: 300, maxLength: 1400 }), fc.constantFrom('', '\0', 'é', '-O2'));
  const argv = fc.array(arg, { minLength: 1, maxLength: 6 });
  fc.assert(
    fc.property(argv, argv, (a, b) => {
      const key = (v: string[]) => cacheKey({ ...TREE_BASE, protocol: 2, argv: v, source: Buffer.from('int x;') });
      assert.equal(key(a) === key(b), JSON.stringify(a) === JSON.stringify(b));
      assert.equal(key([...a]), key(a));
    }),
    { numRuns: 300 },
  );
});

test('mentionsClock finds __DATE__, __TIME__ and __TIMESTAMP__ in a content and not other words', () => {
  for (const macro of ['__DATE__', '__TIME__', '__TIMESTAMP__']) assert.ok(mentionsClock(Buffer.from(`puts(${macro});`)), macro);
  assert.ok(!mentionsClock(Buffer.from('int __DATE; int __TIME_;')));
});

test('ObjectCache searches a pump tree for the clock only when it finds no entry, a file once per content, and never stores a job that reads it', async (t) => {
  const root = tempDir(t, 'distkit-objcache-clock-');
  const cache = new ObjectCache([await DiskStore.open({ dir: path.join(root, 'disk'), maxBytes: 1 << 20, validate: isIntactEntry }, log)], { log, maxEntryBytes: 1 << 20 });
  const searched: string[] = [];
  let compiles = 0;
  const entry: CacheEntry = { object: Buffer.from('object'), stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  // The bodies as sent stand for themselves here: contentOf gives the same bytes, as inflated.
  const job = async (source: string, header = '#define H 1\n'): Promise<CacheState | undefined> => {
    let state: CacheState | undefined;
    const files = [{ kind: 'file' as const, name: '/p/t.c', body: Buffer.from(source), lzo: true }, { kind: 'file' as const, name: '/p/h.h', body: Buffer.from(header), lzo: true }];
    const input: JobKeyInput = { program: 'gcc', protocol: 3, argv: ['gcc', '-c', 't.c'], cwd: '/p', files, contentOf: (i) => (searched.push(files[i]!.name), files[i]!.body) };
    await cache.produce(input, async () => (compiles++, entry), { env: ENV, tmpDir: '/tmp', onState: (s) => (state = s), entryOf: (e) => e, answer: (e) => e });
    await cache.close();
    return state;
  };
  assert.equal(await job('int a;'), 'miss');
  assert.deepEqual(searched, ['/p/t.c', '/p/h.h']);
  assert.equal(await job('int a;'), 'hit');
  assert.equal(searched.length, 2, 'a hit does not search');
  assert.equal(await job('int b;'), 'miss');
  assert.deepEqual(searched.slice(2), ['/p/t.c'], 'the header, the same bytes as before, is not searched again');
  assert.equal(await job('int c;', '#define H __TIME__\n'), 'off', 'a header that changed is searched again');
  assert.equal(await job('char *t = __DATE__;'), 'off');
  assert.equal(await job('char *t = __DATE__;'), 'off', 'never stored');
  assert.equal(compiles, 5);
  assert.equal(cache.stats.stores, 2);
  assert.equal(cache.stats.misses, 2, 'a job that reads the clock is not a miss');
});
