// The object cache's Redis tier against Debian's real redis-server, standalone and a Redis
// Cluster: a round trip with its TTL, entries that must not be served (written by hand with
// redis-cli, under another secret, moved to another key, damaged), the value cap, a killed Redis
// (a fast TIER_FAILED, then back after the restart) and a Redis that stops answering (the timeout).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRedisTier, wrapEntry } from '../../../src/compile/object_cache/redis_tier';
import { TIER_FAILED, type ObjectTier, type RedisTierOptions } from '../../../src/compile/object_cache/object_store';
import { startRedis, startRedisCluster, type RedisServer } from '../../support/redis';
import { captureLog } from '../../support/log_capture';
import type { AfterHook } from '../../support/temp_dir';

const SECRET = Buffer.from('farm secret for the tests');

function keyOf(n: number): string {
  return n.toString(16).padStart(64, '0');
}

function tierOn(t: AfterHook, urls: readonly string[], options: Partial<RedisTierOptions> = {}) {
  const { log, lines } = captureLog('distccd');
  const tier = createRedisTier({ urls, secret: SECRET, ttlSeconds: 3600, maxValueBytes: 1 << 20, timeoutMs: 500, prefix: 'obj:', ...options }, log);
  t.after(() => tier.close());
  return { tier, lines };
}

/** Puts until a get finds the value: the tier connects in the background and fails fast meanwhile. */
async function putUntilStored(tier: ObjectTier, key: string, value: Buffer): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    await tier.put(key, value);
    const got = await tier.get(key);
    if (Buffer.isBuffer(got) && got.equals(value)) return;
    if (Date.now() > deadline) throw new Error('the tier never stored a value');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('redis tier returns what was put, with its TTL, when redis is standalone', async (t) => {
  const redis = await startRedis(t);
  const { tier } = tierOn(t, [redis.unixUrl], { ttlSeconds: 777 });
  const value = randomBytes(100_000);
  await putUntilStored(tier, keyOf(1), value);
  assert.equal(await tier.get(keyOf(2)), undefined);
  const ttl = Number(await redis.cli(['ttl', `obj:${keyOf(1)}`]));
  assert.ok(ttl > 770 && ttl <= 777, `ttl ${ttl}`);
  assert.ok(tier.stats.hits >= 1 && tier.stats.misses >= 1 && tier.stats.stores >= 1, JSON.stringify(tier.stats));
});

test('redis tier returns what was put when redis is a cluster given by its seeds', async (t) => {
  const cluster = await startRedisCluster(t);
  const { tier } = tierOn(t, cluster.urls.slice(0, 3), { timeoutMs: 200 });
  const values = Array.from({ length: 30 }, (_, i) => randomBytes(1000 + i));
  await putUntilStored(tier, keyOf(0), values[0]!);
  for (const [i, v] of values.entries()) await tier.put(keyOf(i), v);
  for (const [i, v] of values.entries()) assert.deepEqual(await tier.get(keyOf(i)), v, `key ${i}`);
  // The keys really are spread over the three masters.
  const masters = await cluster.masters();
  const counts = await Promise.all(masters.map(async (m) => Number(await cluster.cli(m, ['dbsize']))));
  assert.ok(counts.every((c) => c > 0), `keys per master: ${counts}`);
});

test('redis tier treats a foreign, moved, damaged or differently keyed entry as a miss, logged and counted', async (t) => {
  const redis = await startRedis(t);
  const { tier, lines } = tierOn(t, [redis.unixUrl]);
  const good = Buffer.from('the real object');
  await putUntilStored(tier, keyOf(1), good);
  const direct = new Redis({ path: redis.socket });
  t.after(() => direct.disconnect());
  const errorsBefore = tier.stats.errors;
  // Written by hand, without the secret.
  await redis.cli(['set', `obj:${keyOf(2)}`, 'DKO\x01' + 'x'.repeat(40)]);
  // A valid entry of another key copied here (the MAC covers the key).
  await direct.set(`obj:${keyOf(3)}`, (await direct.getBuffer(`obj:${keyOf(1)}`))!);
  // Wrapped under another farm's secret.
  await direct.set(`obj:${keyOf(4)}`, wrapEntry(Buffer.from('another farm'), keyOf(4), Buffer.from('evil object')));
  // One byte of the object flipped.
  const damaged = Buffer.from((await direct.getBuffer(`obj:${keyOf(1)}`))!);
  damaged[damaged.length - 1]! ^= 1;
  await direct.set(`obj:${keyOf(5)}`, damaged);
  // Too short to hold the header.
  await direct.set(`obj:${keyOf(6)}`, 'DKO');
  for (const n of [2, 3, 4, 5, 6]) assert.equal(await tier.get(keyOf(n)), undefined, `entry ${n} was served`);
  assert.equal(tier.stats.errors - errorsBefore, 5);
  assert.equal(lines.filter((l) => /bad entry/.test(l)).length, 5, lines.join('\n'));
  assert.deepEqual(await tier.get(keyOf(1)), good);
});

test('redis tier does not store a value above its cap', async (t) => {
  const redis = await startRedis(t);
  const { tier } = tierOn(t, [redis.unixUrl], { maxValueBytes: 4096 });
  await putUntilStored(tier, keyOf(1), Buffer.alloc(1000));
  await tier.put(keyOf(2), Buffer.alloc(5000));
  assert.equal(await redis.cli(['exists', `obj:${keyOf(2)}`]), '0\n');
});

async function assertFast(what: string, run: () => Promise<unknown>, ms: number): Promise<void> {
  const started = performance.now();
  await run();
  const took = performance.now() - started;
  assert.ok(took < ms, `${what} took ${took.toFixed(1)} ms`);
}

test('redis tier misses fast and never rejects while redis is killed, and hits again after its restart', async (t) => {
  const redis: RedisServer = await startRedis(t);
  const { tier, lines } = tierOn(t, [redis.unixUrl], { timeoutMs: 50 });
  await putUntilStored(tier, keyOf(1), Buffer.from('kept'));
  await redis.kill();
  for (let i = 0; i < 20; i++) {
    await assertFast('a get while redis is dead', async () => assert.equal(await tier.get(keyOf(1)), TIER_FAILED, 'an outage is not a miss'), 100);
    await assertFast('a put while redis is dead', () => tier.put(keyOf(100 + i), Buffer.from('lost')), 100);
  }
  assert.equal(lines.filter((l) => l.includes('Redis down')).length, 1, lines.join('\n'));
  assert.ok(tier.stats.errors >= 40);
  // No persistence: the restarted Redis is empty; the tier stores and serves again.
  await redis.restart();
  await putUntilStored(tier, keyOf(2), Buffer.from('after'));
  assert.deepEqual(await tier.get(keyOf(2)), Buffer.from('after'));
});

test('redis tier answers a miss within its timeout when redis stops answering', async (t) => {
  const redis = await startRedis(t);
  const { tier } = tierOn(t, [redis.unixUrl], { timeoutMs: 40 });
  await putUntilStored(tier, keyOf(1), Buffer.from('v'));
  process.kill(redis.pid, 'SIGSTOP');
  try {
    const started = performance.now();
    assert.equal(await tier.get(keyOf(1)), TIER_FAILED);
    await tier.put(keyOf(2), Buffer.from('w'));
    const took = performance.now() - started;
    assert.ok(took >= 70 && took < 250, `a get and a put took ${took.toFixed(1)} ms with a 40 ms timeout`);
  } finally {
    process.kill(redis.pid, 'SIGCONT');
  }
});

test('redis tier hits on its very first get when made while the entry is already in redis', async (t) => {
  const redis = await startRedis(t);
  const { tier: writer } = tierOn(t, [redis.unixUrl]);
  await putUntilStored(writer, keyOf(7), Buffer.from('from daemon A'));
  // A process per connection makes its tier and asks at once: the first connection is being made.
  const { tier: reader } = tierOn(t, [redis.unixUrl], { timeoutMs: 200 });
  assert.deepEqual(await reader.get(keyOf(7)), Buffer.from('from daemon A'));
});
