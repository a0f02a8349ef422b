// The object cache's tiers and single flight, with two real disk tiers (the second standing in
// for a farm's Redis): a local hit never asks the second tier, a hit from the second is written
// to the first, a corrupt entry in either is a miss, only successful results are stored, and
// identical jobs at once compile once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DiskStore } from '../../../src/compile/object_cache/disk_store';
import { encodeEntry, isIntactEntry, type CacheEntry } from '../../../src/compile/object_cache/entry_codec';
import { ObjectCache, type CacheState, type JobKeyInput } from '../../../src/compile/object_cache/object_cache';
import { TIER_FAILED, type ObjectTier } from '../../../src/compile/object_cache/object_store';
import { createRedisTier } from '../../../src/compile/object_cache/redis_tier';
import { createLogger } from '../../../src/log/index';
import { startRedis } from '../../support/redis';
import { tempDir } from '../../support/temp_dir';

interface Outcome {
  readonly ok: boolean;
  readonly entry?: CacheEntry;
  readonly from: 'compile' | 'cache';
}

const log = createLogger('t', { level: 'emerg' });
const ENV = { PATH: '/usr/bin:/bin' };

function input(source: string): JobKeyInput {
  return { program: 'gcc', protocol: 2, argv: ['gcc', '-c', 'distccd-input.i', '-o', 'distccd-output.o'], cwd: '/tmp', source: Buffer.from(source) };
}

function entryFor(source: string): CacheEntry {
  return { object: Buffer.from(`object of ${source}`), depfile: undefined, stdout: Buffer.alloc(0), stderr: Buffer.from('warning\n') };
}

/** `remote`: the second tier (default: a second disk tier standing in for Redis). */
async function rig(t: Parameters<typeof tempDir>[0], options: { remote?: ObjectTier } = {}) {
  const root = tempDir(t, 'distkit-objcache-unit-');
  const open = (name: string) => DiskStore.open({ dir: path.join(root, name), maxBytes: 1 << 20, validate: isIntactEntry }, log);
  const local = await open('local');
  const remote = options.remote ?? await open('remote');
  const cache = new ObjectCache([local, remote], { log, maxEntryBytes: 1 << 20 });
  let compiles = 0;
  const job = async (source: string, options: { fail?: boolean; delayMs?: number } = {}) => {
    let state: CacheState | undefined;
    const outcome = await cache.produce<Outcome>(
      input(source),
      async () => {
        compiles++;
        if (options.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
        return options.fail === true ? { ok: false, from: 'compile' } : { ok: true, entry: entryFor(source), from: 'compile' };
      },
      { env: ENV, tmpDir: '/tmp', onState: (s) => (state = s), entryOf: (o) => (o.ok ? o.entry : undefined), answer: (entry) => ({ ok: true, entry, from: 'cache' }) },
    );
    await cache.close(); // waits for the stores in flight
    return { outcome, state };
  };
  return { local, remote, cache, job, compiles: () => compiles };
}

test('ObjectCache answers from the local tier without asking the next when the local tier holds the entry', async (t) => {
  const r = await rig(t);
  assert.equal((await r.job('a')).state, 'miss');
  assert.equal(r.local.stats.stores, 1);
  assert.equal(r.remote.stats.stores, 1, 'a compile is stored in every tier');
  const remoteGets = r.remote.stats.hits + r.remote.stats.misses;
  const hit = await r.job('a');
  assert.equal(hit.state, 'hit');
  assert.equal(hit.outcome.from, 'cache');
  assert.deepEqual(hit.outcome.entry, entryFor('a'));
  assert.equal(r.remote.stats.hits + r.remote.stats.misses, remoteGets, 'a local hit never asks the second tier');
  assert.equal(r.compiles(), 1);
  assert.deepEqual({ hits: r.cache.stats.hits, misses: r.cache.stats.misses, stores: r.cache.stats.stores }, { hits: 1, misses: 1, stores: 1 });
  assert.ok(r.cache.stats.bytes > 0);
});

test('ObjectCache writes a hit of the second tier to the first when the first does not hold it', async (t) => {
  const r = await rig(t);
  const key = await r.cache.keyOf(input('b'), { env: ENV, tmpDir: '/tmp' });
  await r.remote.put(key, encodeEntry(key, entryFor('b')));
  const hit = await r.job('b');
  assert.equal(hit.state, 'hit');
  assert.deepEqual(hit.outcome.entry, entryFor('b'));
  assert.equal(r.local.stats.stores, 1, 'written back to the local tier');
  const again = await r.job('b');
  assert.equal(again.state, 'hit');
  assert.equal(r.remote.stats.hits, 1, 'the second hit is local');
  assert.equal(r.compiles(), 0);
});

test('ObjectCache compiles when the second tier holds an entry sealed for another key', async (t) => {
  const r = await rig(t);
  const key = await r.cache.keyOf(input('c'), { env: ENV, tmpDir: '/tmp' });
  const other = await r.cache.keyOf(input('d'), { env: ENV, tmpDir: '/tmp' });
  await r.remote.put(key, encodeEntry(other, entryFor('d')));
  const res = await r.job('c');
  assert.equal(res.state, 'miss');
  assert.deepEqual(res.outcome.entry, entryFor('c'));
  assert.equal(r.compiles(), 1);
});

test('ObjectCache stores nothing when the compile fails', async (t) => {
  const r = await rig(t);
  assert.equal((await r.job('e', { fail: true })).state, 'miss');
  assert.equal((await r.job('e', { fail: true })).state, 'miss');
  assert.equal(r.compiles(), 2);
  assert.equal(r.cache.stats.stores, 0);
});

test('ObjectCache compiles once when identical jobs arrive while the first compiles', async (t) => {
  const r = await rig(t);
  const results = await Promise.all([r.job('f', { delayMs: 200 }), r.job('f'), r.job('f'), r.job('g')]);
  assert.deepEqual(results.map((x) => x.state), ['miss', 'hit', 'hit', 'miss']);
  assert.equal(r.compiles(), 2);
  for (const x of results.slice(0, 3)) assert.deepEqual(x.outcome.entry, entryFor('f'));
});

test('ObjectCache lets a waiting job compile itself when the job it waited for failed', async (t) => {
  const r = await rig(t);
  const [a, b] = await Promise.all([r.job('h', { fail: true, delayMs: 100 }), r.job('h')]);
  assert.equal(a.outcome.ok, false);
  assert.equal(b.outcome.ok, true);
  assert.equal(b.outcome.from, 'compile');
  assert.equal(r.compiles(), 2);
});

test('ObjectCache compiles uncached and says error when the compiler cannot be identified', async (t) => {
  const r = await rig(t);
  let state: CacheState | undefined;
  const out = await r.cache.produce<Outcome>({ ...input('i'), program: 'no-such-cc' }, async () => ({ ok: true, from: 'compile' }),
    { env: ENV, tmpDir: '/tmp', onState: (s) => (state = s), entryOf: () => undefined, answer: () => assert.fail('no hit') });
  assert.equal(out.from, 'compile');
  assert.equal(state, 'error');
  assert.equal(r.cache.stats.errors, 1);
});

test('ObjectCache says error, not miss, and compiles when redis is stopped in the middle', async (t) => {
  const redis = await startRedis(t);
  const tier = createRedisTier({ urls: [redis.unixUrl], secret: Buffer.from('farm secret for the tests'), ttlSeconds: 60, maxValueBytes: 1 << 20, timeoutMs: 50, prefix: 'obj:' }, log);
  t.after(() => tier.close());
  const connected = async (): Promise<void> => {
    // The tier connects in the background and answers TIER_FAILED meanwhile.
    for (let i = 0; (await tier.get('0'.repeat(64))) === TIER_FAILED; i++) {
      assert.ok(i < 200, 'the redis tier never connected');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  // The rig closes the cache after each job to wait for its stores: the tier stays open till the end.
  const remote: ObjectTier = { name: tier.name, get: (k) => tier.get(k), put: (k, v) => tier.put(k, v), get stats() { return tier.stats; }, close: async () => undefined };
  const r = await rig(t, { remote });
  await connected();
  assert.equal((await r.job('up')).state, 'miss');
  await redis.kill();
  const down = await r.job('down');
  assert.equal(down.state, 'error', 'a lookup that Redis could not answer is not a miss');
  assert.equal(down.outcome.from, 'compile');
  assert.equal(down.outcome.ok, true);
  assert.equal((await r.job('up')).state, 'hit', 'a local hit never asks Redis');
  assert.deepEqual({ hits: r.cache.stats.hits, misses: r.cache.stats.misses }, { hits: 1, misses: 1 }, 'the job of the outage counts as an error only');
  assert.ok(r.cache.stats.errors >= 1);
  await redis.restart();
  await connected();
  assert.equal((await r.job('back')).state, 'miss');
});
