// RedisConnection against Debian's real redis-server: URLs of every kind and a password file to a
// standalone server, a cluster from its seeds or from one node, requests that fail at once while
// Redis is down, and one "Redis down" / "Redis back" pair per outage.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { RedisConnection } from '../../src/redis/redis_connection';
import { UsageError } from '../../src/errors';
import { startRedis, startRedisCluster } from '../support/redis';
import { tempDir } from '../support/temp_dir';
import { captureLog } from '../support/log_capture';
import { waitUntil } from '../support/wait_until';

/** Retries `request` until it succeeds (the connection is made in the background). */
async function eventually<T>(request: () => Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await request();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test('RedisConnection reaches a standalone redis over a unix:// URL and over redis:// with a password file', async (t) => {
  const password = 'pw-' + process.pid;
  const redis = await startRedis(t, { tcp: true, password });
  const dir = tempDir(t);
  const passwordFile = path.join(dir, 'redis.password');
  fs.writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  for (const url of [redis.unixUrl, redis.tcpUrl]) {
    const { log } = captureLog();
    const conn = new RedisConnection([url], { passwordFile, requestTimeoutMs: 1000, log });
    t.after(() => conn.close());
    await eventually(() => conn.run((c) => c.set('k:' + url, 'v')));
    assert.equal(await conn.run((c) => c.get('k:' + url)), 'v');
    assert.equal(conn.mode, 'standalone');
  }
  // Without the password the server refuses every request.
  const { log } = captureLog();
  const anonymous = new RedisConnection([redis.unixUrl], { requestTimeoutMs: 500, log });
  t.after(() => anonymous.close());
  await assert.rejects(() => eventually(() => anonymous.run((c) => c.get('k')), 1500), /NOAUTH|ready|writeable|closed|answer/i);
});

test('RedisConnection refuses a password in a URL, an unreadable password file and an unknown scheme', () => {
  const { log } = captureLog();
  assert.throws(() => new RedisConnection(['redis://user:secret@127.0.0.1:6379'], { requestTimeoutMs: 10, log }), (e: unknown) => e instanceof UsageError && /password file/.test(e.message) && !/secret/.test(e.message));
  assert.throws(() => new RedisConnection(['redis://127.0.0.1:1'], { passwordFile: '/nonexistent/pw', requestTimeoutMs: 10, log }), /Cannot read the Redis password file \/nonexistent\/pw: ENOENT/);
  assert.throws(() => new RedisConnection(['http://127.0.0.1:1'], { requestTimeoutMs: 10, log }), /scheme http:/);
  assert.throws(() => new RedisConnection(['unix://relative.sock'], { requestTimeoutMs: 10, log }), /absolute socket path/);
});

test('RedisConnection fails requests at once while redis is down, logs the outage once, and comes back', async (t) => {
  const redis = await startRedis(t);
  const { log, lines } = captureLog();
  const conn = new RedisConnection([redis.unixUrl], { requestTimeoutMs: 1000, log });
  t.after(() => conn.close());
  await eventually(() => conn.run((c) => c.set('a', '1')));
  await redis.kill();
  for (let i = 0; i < 50; i++) {
    const started = performance.now();
    await assert.rejects(conn.run((c) => c.get('a')));
    assert.ok(performance.now() - started < 200, `request ${i} took ${performance.now() - started} ms while redis was down`);
  }
  assert.equal(lines.filter((l) => l.includes('Redis down')).length, 1, lines.join('\n'));
  await redis.restart();
  await eventually(() => conn.run((c) => c.set('a', '2')));
  await waitUntil(() => (lines.some((l) => l.includes('Redis back')) ? true : undefined), 5000, () => lines.join('\n'));
  assert.equal(lines.filter((l) => l.includes('Redis down')).length, 1, lines.join('\n'));
  assert.equal(lines.filter((l) => l.includes('Redis back')).length, 1, lines.join('\n'));
  assert.equal(conn.outage.outages, 1);
});

test('RedisConnection fails a request after its deadline when redis does not answer', async (t) => {
  const redis = await startRedis(t);
  const { log } = captureLog();
  const conn = new RedisConnection([redis.unixUrl], { requestTimeoutMs: 50, log });
  t.after(() => conn.close());
  await eventually(() => conn.run((c) => c.ping()));
  // SIGSTOP: the socket stays open but nothing answers, as with a Redis stuck on a slow command.
  process.kill(redis.pid, 'SIGSTOP');
  try {
    const started = performance.now();
    await assert.rejects(conn.run((c) => c.get('x')), /50 ms|timed out/i);
    const took = performance.now() - started;
    assert.ok(took >= 45 && took < 300, `took ${took} ms`);
  } finally {
    process.kill(redis.pid, 'SIGCONT');
  }
});

test('RedisConnection uses a Redis Cluster given by its seeds or by a single node', async (t) => {
  const cluster = await startRedisCluster(t);
  const { log } = captureLog();
  const seeds = new RedisConnection(cluster.urls.slice(0, 2), { requestTimeoutMs: 1000, log });
  t.after(() => seeds.close());
  assert.equal(seeds.mode, 'cluster');
  for (let i = 0; i < 50; i++) await eventually(() => seeds.run((c) => c.set(`key${i}`, `v${i}`)));
  const one = new RedisConnection([cluster.urls[3]!], { requestTimeoutMs: 1000, log });
  t.after(() => one.close());
  await waitUntil(() => (one.mode === 'cluster' ? true : undefined), 10_000, () => 'the single seed to be seen as a cluster node');
  for (let i = 0; i < 50; i++) assert.equal(await eventually(() => one.run((c) => c.get(`key${i}`))), `v${i}`);
});

test('RedisConnection fails its first requests fast when redis is not there at start', async (t) => {
  const dir = tempDir(t);
  const { log, lines } = captureLog();
  const conn = new RedisConnection([`unix://${path.join(dir, 'nobody.sock')}`], { requestTimeoutMs: 1000, log });
  t.after(() => conn.close());
  const started = performance.now();
  for (let i = 0; i < 10; i++) await assert.rejects(conn.run((c) => c.ping()));
  assert.ok(performance.now() - started < 500, `10 requests took ${(performance.now() - started).toFixed(0)} ms`);
  assert.equal(lines.filter((l) => l.includes('Redis down')).length, 1, lines.join('\n'));
});
