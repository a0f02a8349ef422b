// dc_server on Redis (-redis, issue 18) as a real program against Debian's real redis-server:
// every golden vector gives the in-memory store's answers byte for byte; the C dc_test, directly
// and through the C dc_client, passes; a Redis that dies gets the failure status at once, one log
// line per outage, and the service back when Redis returns; option errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Program, runToExit, dialOf, libnalOf, replayVector } from './cache_harness';
import { loadGoldenVectors, sessionsOf } from '../cache/golden_vectors';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/constants';
import { startRedis } from '../support/redis';
import { cDistcache } from '../support/c_distcache';
import { Daemon } from '../support/daemon';
import { tempDir } from '../support/temp_dir';
import { run } from '../support/distccd_harness';
import type { AfterHook } from '../support/temp_dir';
import { metricsAddressIn, parseSamples, scrape } from '../support/metrics_scrape';

async function startOnRedis(t: AfterHook, redisArgs: readonly string[], extra: readonly string[] = []): Promise<{ server: Program; address: string }> {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', ...redisArgs, ...extra]);
  t.after(() => server.stop());
  const [address] = await server.listening();
  return { server, address: address! };
}

/** A standalone Redis, dc_server on it and a client that has stored 'before' = 'data' through it. */
async function servingOnRedis(t: AfterHook): Promise<{ redis: Awaited<ReturnType<typeof startRedis>>; server: Program; address: string; client: CacheClient }> {
  const redis = await startRedis(t);
  const { server, address } = await startOnRedis(t, ['-redis', redis.unixUrl]);
  const client = await CacheClient.connect(targetOf(address));
  t.after(() => client.destroy());
  for (let tries = 0; (await client.add('before', 'data', 60_000)) !== Status.OK; tries++) {
    assert.ok(tries < 100, 'dc_server never reached redis');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { redis, server, address, client };
}

function targetOf(address: string): { host: string; port: number } {
  const dial = dialOf(address) as { host: string; port: number };
  return { host: dial.host, port: dial.port };
}

test('dc_server on redis answers every golden vector as the in-memory store does, byte for byte', async (t) => {
  const redis = await startRedis(t);
  const vectors = loadGoldenVectors();
  let replayed = 0;
  for (const [i, vector] of vectors.entries()) {
    // A -sessions count bound has no Redis equivalent (Redis evicts by maxmemory): that vector
    // is the refusal test below. Each vector gets a prefix of its own: they reuse session ids.
    if (sessionsOf(vector) !== 512) continue;
    const { server, address } = await startOnRedis(t, ['-redis', redis.unixUrl, '-redis-prefix', `v${i}:`]);
    await replayVector(vector, dialOf(address));
    assert.equal(server.running, true, vector.name);
    await server.stop();
    replayed++;
  }
  assert.equal(replayed, vectors.length - 1);
  // The sessions really are in Redis: the multi-frame vector leaves its session there.
  const multi = vectors.findIndex((v) => v.name.startsWith('multi-frame ADD'));
  assert.equal(await redis.cli(['strlen', `v${multi}:multi-frame-id-00`]), '2049\n');
});

test('dc_server refuses -sessions and -maxmemory with -redis, and the redis options without -redis', async () => {
  const sessions = await runToExit('dc_server', ['-listen', 'IP:127.0.0.1:0', '-redis', 'unix:///nonexistent.sock', '-sessions', '64']);
  assert.equal(sessions.code, 1);
  assert.match(sessions.stderr, /-sessions has no meaning with -redis/);
  const memory = await runToExit('dc_server', ['-listen', 'IP:127.0.0.1:0', '-redis', 'unix:///nonexistent.sock', '-maxmemory', '64']);
  assert.match(memory.stderr, /-maxmemory has no meaning with -redis/);
  const prefix = await runToExit('dc_server', ['-listen', 'IP:127.0.0.1:0', '-redis-prefix', 'x:']);
  assert.equal(prefix.code, 1);
  assert.match(prefix.stderr, /need -redis/);
  const password = await runToExit('dc_server', ['-listen', 'IP:127.0.0.1:0', '-redis', 'redis://u:hunter2@127.0.0.1:6379']);
  assert.equal(password.code, 1);
  assert.match(password.stderr, /password file/);
  assert.doesNotMatch(password.stderr, /hunter2/);
});

test('dc_server on redis with a password file passes the C dc_test, directly and through the C dc_client', async (t) => {
  const c = await cDistcache();
  const dir = tempDir(t);
  const passwordFile = path.join(dir, 'pw');
  fs.writeFileSync(passwordFile, 'redis-secret\n', { mode: 0o600 });
  const redis = await startRedis(t, { tcp: true, password: 'redis-secret' });
  const { server, address } = await startOnRedis(t, ['-redis', redis.tcpUrl, '-redis-password-file', passwordFile]);
  const direct = await run(c.dcTest, ['-connect', libnalOf(address), '-sessions', '20', '-ops', '2000', '-persistent'], { cwd: dir, timeoutMs: 60_000 });
  assert.equal(direct.code, 0, direct.stdout + direct.stderr);
  assert.match(direct.stdout + direct.stderr, /all tests complete/);
  const proxySocket = path.join(dir, 'dc_client.sock');
  const proxy = Daemon.start(t, c.dcClient, ['-listen', `UNIX:${proxySocket}`, '-server', libnalOf(address)]);
  await proxy.until('the dc_client socket', () => (fs.existsSync(proxySocket) ? true : undefined));
  const proxied = await run(c.dcTest, ['-connect', `UNIX:${proxySocket}`, '-sessions', '20', '-ops', '2000'], { cwd: dir, timeoutMs: 60_000 });
  assert.equal(proxied.code, 0, proxied.stdout + proxied.stderr);
  assert.match(proxied.stdout + proxied.stderr, /all tests complete/);
  assert.ok(Number(await redis.cli(['dbsize'], 'redis-secret')) > 0, 'no session reached Redis');
  assert.equal(server.running, true);
});

test('dc_server on redis answers the failure status at once while redis is dead, logs the outage once, and serves again after', async (t) => {
  const { redis, server, client } = await servingOnRedis(t);
  assert.deepEqual(await client.get('before'), Buffer.from('data'));
  await redis.kill();
  // 300 pipelined requests of every kind: each answered, in order, with the failure status.
  const started = performance.now();
  const answers = await Promise.all(
    Array.from({ length: 100 }, (_, i) => [client.add(`down${i}`, 'x', 60_000), client.get(`down${i}`), client.have('before')]).flat(),
  );
  const took = performance.now() - started;
  assert.ok(took < 1500, `300 requests took ${took.toFixed(0)} ms while redis was dead`);
  assert.deepEqual(answers, Array.from({ length: 100 }, () => [Status.NOTOK, null, false]).flat());
  await server.waitForLine(/Redis down/);
  assert.equal(server.lines.filter((l) => l.includes('Redis down')).length, 1, server.stderr);
  await redis.restart();
  for (let tries = 0; (await client.add('after', 'back', 60_000)) !== Status.OK; tries++) {
    assert.ok(tries < 200, 'dc_server never came back');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(await client.get('after'), Buffer.from('back'));
  await server.waitForLine(/Redis back/);
  assert.equal(server.lines.filter((l) => l.includes('Redis down')).length, 1, server.stderr);
  assert.equal(server.running, true);
});

test('dc_server on redis reports the sessions Redis holds in its metrics and no in-memory store figures', async (t) => {
  const redis = await startRedis(t);
  const { server, address } = await startOnRedis(t, ['-redis', redis.unixUrl], ['-metrics', '127.0.0.1:0']);
  await server.waitUntil('the metrics line', () => metricsAddressIn(server.stderr) !== undefined);
  const metrics = metricsAddressIn(server.stderr)!;
  const client = await CacheClient.connect(targetOf(address));
  t.after(() => client.close());
  for (let i = 0; i < 5; i++) assert.equal(await client.add(Buffer.from(`metrics-${i}`), Buffer.from('data'), 600_000), Status.OK);
  // The key count is asked of Redis at most once a second: scrape until it shows all five.
  let samples = parseSamples(await scrape(metrics));
  for (const deadline = Date.now() + 20_000; samples.get('dc_server_sessions') !== 5 && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    samples = parseSamples(await scrape(metrics));
  }
  assert.equal(samples.get('dc_server_sessions'), 5);
  assert.equal(samples.get('dc_server_operations_total{command="add",result="ok"}'), 5);
  assert.equal(samples.has('dc_server_session_bytes'), false, 'no byte count of a store this process does not hold');
});

test('dc_server on redis answers the failure status after its deadline, in order, when redis stops answering', async (t) => {
  const { redis, server, client } = await servingOnRedis(t);
  // SIGSTOP: the socket stays open and takes our commands, nothing answers (a Redis stuck on a
  // slow command): no error ever comes, only the deadline answers.
  process.kill(redis.pid, 'SIGSTOP');
  let answers: unknown[];
  const started = performance.now();
  try {
    answers = await Promise.all(Array.from({ length: 20 }, (_, i) => [client.get('before'), client.add(`stuck${i}`, 'x', 60_000), client.have('before')]).flat());
  } finally {
    process.kill(redis.pid, 'SIGCONT');
  }
  const took = performance.now() - started;
  assert.ok(took >= 900 && took < 3000, `the answers took ${took.toFixed(0)} ms (deadline 1000 ms)`);
  assert.deepEqual(answers, Array.from({ length: 20 }, () => [null, Status.NOTOK, false]).flat());
  await server.waitForLine(/Redis down: no answer within/);
  // Redis answers again: so does dc_server (the late replies of the stuck commands are dropped).
  assert.deepEqual(await client.get('before'), Buffer.from('data'));
  assert.equal(server.running, true);
});

test('dc_server on redis answers a lone client at once after rounds of sixteen clients', async (t) => {
  const { address, client } = await servingOnRedis(t);
  const clients = await Promise.all(Array.from({ length: 15 }, () => CacheClient.connect(targetOf(address))));
  t.after(() => clients.forEach((c) => c.destroy()));
  for (let round = 0; round < 5; round++) {
    const answers = await Promise.all([client, ...clients].map((c, i) => c.add(`round${round}-${i}`, 'x', 60_000)));
    assert.deepEqual(answers, Array.from({ length: 16 }, () => Status.OK));
  }
  // The fifteen others stay quiet: a batch waits for no one who does not come (never until the
  // deadline, which would answer the failure status, nor for ever).
  const started = performance.now();
  for (let i = 0; i < 20; i++) assert.deepEqual(await client.get('round4-0'), Buffer.from('x'));
  const took = performance.now() - started;
  assert.ok(took < 900, `20 lone lookups took ${took.toFixed(0)} ms`);
});
