// distccd's object cache on a farm's Redis, end to end (issue 16's Proof) with Debian's real
// distcc client and make: two daemons that share only a Redis (a build through A makes B hit,
// same bytes), and Redis killed in the middle of a make (every job succeeds, the outage is logged
// once, and the cache works again once Redis is back).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { clientEnv, jobTree, run, startDistccd, type RunningDistccd } from '../support/distccd_harness';
import { startRedis, type RedisServer } from '../support/redis';
import type { AfterHook } from '../support/temp_dir';

const SUMMARY = /dcc_job_summary/;

/** A tree of `n` C files (each a few hundred lines, with system headers) and a Makefile using `distcc gcc`. */
async function makeTree(dir: string, n: number): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const objects: string[] = [];
  for (let i = 0; i < n; i++) {
    const body = Array.from({ length: 120 }, (_, k) => `static int f${k}(int x) { return x * ${k + i} + (int)strlen("${i}-${k}"); }`).join('\n');
    const calls = Array.from({ length: 120 }, (_, k) => `f${k}(v)`).join(' + ');
    await fs.writeFile(path.join(dir, `u${i}.c`), `#include <stdio.h>\n#include <string.h>\n${body}\nint u${i}(int v) { return ${calls}; }\n`);
    objects.push(`u${i}.o`);
  }
  await fs.writeFile(
    path.join(dir, 'Makefile'),
    `OBJS = ${objects.join(' ')}\nall: $(OBJS)\n%.o: %.c\n\tdistcc gcc -O2 -c $< -o $@\nclean:\n\trm -f $(OBJS)\n`,
  );
  return objects;
}

async function secretFile(dir: string): Promise<string> {
  const file = path.join(dir, 'farm.secret');
  await fs.writeFile(file, 'a farm secret of more than sixteen bytes\n', { mode: 0o600 });
  return file;
}

/** A daemon with its own disk cache on `redis`. The TMPDIR is part of the key (gcc writes it into
 * objects), so the daemons of a farm share its path, as machines that all use /tmp do. */
async function daemonOnRedis(t: AfterHook, name: string, redis: RedisServer, secret: string, options: { tmp: string; extra?: readonly string[] }): Promise<RunningDistccd> {
  const { root, masq } = await jobTree(t, `distkit-objcache-redis-${name}-`);
  return startDistccd(t, {
    compilerDir: masq,
    args: ['--cache-dir', path.join(root, 'cache'), '--cache-redis', redis.unixUrl, '--cache-secret-file', secret, ...(options.extra ?? [])],
    env: { TMPDIR: options.tmp },
  });
}

async function make(dir: string, home: string, port: number, target = 'all'): Promise<void> {
  const r = await run('make', ['-j4', target], { cwd: dir, env: clientEnv(home, `127.0.0.1:${port}/4,lzo`), timeoutMs: 300_000 });
  assert.equal(r.code, 0, `make ${target}: ${r.stdout}${r.stderr}`);
}

/** The cache states of a daemon's summary lines from the `from`th on. */
function states(d: RunningDistccd, from = 0): string[] {
  return d.lines.filter((l) => SUMMARY.test(l)).slice(from).map((l) => {
    assert.match(l, / COMPILE_OK exit:0 /, l);
    return / cache:(\w+)$/.exec(l)?.[1] ?? 'none';
  });
}

test('distccd answers from a second daemon that only shares the redis when a build went through the first', async (t) => {
  const redis = await startRedis(t);
  const { root, tmp } = await jobTree(t, 'distkit-objcache-redis-build-');
  const secret = await secretFile(root);
  // What is under test is the sharing, not the timeout: a loaded test machine may take more than
  // the default 50 ms to answer a lookup, which then reads as cache:error.
  const patient = ['--cache-redis-timeout', '2000'];
  const a = await daemonOnRedis(t, 'a', redis, secret, { tmp, extra: patient });
  const b = await daemonOnRedis(t, 'b', redis, secret, { tmp, extra: patient });
  const src = path.join(root, 'src');
  const home = path.join(root, 'home');
  await fs.mkdir(home);
  const objects = await makeTree(src, 8);
  await make(src, home, a.port);
  await a.waitForCount(SUMMARY, objects.length);
  assert.deepEqual(states(a), objects.map(() => 'miss'));
  const built = await Promise.all(objects.map((o) => fs.readFile(path.join(src, o))));
  assert.ok(Number(await redis.cli(['dbsize'])) >= objects.length, 'the entries did not reach Redis');
  await make(src, home, b.port, 'clean');
  await make(src, home, b.port);
  await b.waitForCount(SUMMARY, objects.length);
  assert.deepEqual(states(b), objects.map(() => 'hit'), `B compiled what A had compiled:\n${b.lines.filter((l) => /cache|redis|Redis/i.test(l)).join('\n')}`);
  for (const [i, o] of objects.entries()) assert.deepEqual(await fs.readFile(path.join(src, o)), built[i], `${o} from B's hit differs from A's compile`);
});

test('distccd finishes every job of a make when redis is killed in the middle, and caches again once it is back', async (t) => {
  const redis = await startRedis(t);
  const { root, tmp } = await jobTree(t, 'distkit-objcache-redis-kill-');
  const secret = await secretFile(root);
  // No disk tier: every lookup and store goes to Redis.
  const d = await daemonOnRedis(t, 'd', redis, secret, { tmp, extra: ['--cache-size', '0'] });
  const src = path.join(root, 'src');
  const home = path.join(root, 'home');
  await fs.mkdir(home);
  const objects = await makeTree(src, 24);
  const building = make(src, home, d.port);
  await d.waitForCount(SUMMARY, 4, 120_000);
  await redis.kill();
  const killedAfter = states(d).length;
  await building;
  await d.waitForCount(SUMMARY, objects.length);
  for (const o of objects) await fs.access(path.join(src, o));
  const during = states(d);
  assert.equal(during.length, objects.length);
  assert.ok(killedAfter < objects.length, 'the make was over before Redis was killed');
  // No disk tier: a lookup while Redis is dead is a tier error, not a miss. A job's summary comes
  // once its entry is stored, so the jobs summarised after the kill that looked up before it are
  // at most one compiling and one storing per make slot (-j4): 8.
  const afterKill = during.slice(killedAfter);
  assert.ok(afterKill.filter((s) => s !== 'error').length <= 8 && during.slice(killedAfter + 8).every((s) => s === 'error'), `states after the kill (from job ${killedAfter}): ${during.join(' ')}`);
  assert.equal(d.lines.filter((l) => l.includes('Redis down')).length, 1, d.lines.filter((l) => /Redis/.test(l)).join('\n'));
  // Back: the restarted (empty) Redis is filled by one build and answers the next.
  await redis.restart();
  await d.waitFor(/Redis back/, 10_000).catch(() => undefined);
  await make(src, home, d.port, 'clean');
  await make(src, home, d.port);
  await d.waitForCount(SUMMARY, 2 * objects.length);
  await make(src, home, d.port, 'clean');
  await make(src, home, d.port);
  await d.waitForCount(SUMMARY, 3 * objects.length);
  const after = states(d, 2 * objects.length);
  // Each lookup has 50 ms (--cache-redis-timeout's default): on a loaded test machine some give up and compile,
  // which is the point of the timeout; most must hit.
  const hits = after.filter((s) => s === 'hit').length;
  t.diagnostic(`after the restart: ${hits} of ${objects.length} jobs hit; during the make Redis was killed in: ${during.join(' ')}`);
  assert.ok(hits >= objects.length / 2, `states once Redis was back: ${after.join(' ')}`);
});
