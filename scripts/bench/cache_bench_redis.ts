// The Redis rows of `npm run bench -- cache` (issue 18): ops/s of our dc_server on Redis
// (standalone over a unix socket, and a Redis Cluster of three masters with one replica each) beside
// our dc_server in memory, for GET/HAVE/REMOVE/ADD with 1, 4 and 16 persistent clients, 512
// pre-filled sessions of 150 B, clients talking to dc_server over a unix socket. Every server
// (dc_server, and redis-server or all six cluster nodes) shares CPU 0, the load generator (the
// cache bench's own worker, `cache_bench.js --worker`) runs on CPU 1: the Redis rows get the same
// one core as the in-memory server, for the store and the front end together. Goal: on Redis at
// least half the in-memory ops/s with 16 clients.
// Called by cache_bench.ts after its own table; also runs alone: node dist/scripts/bench/cache_bench_redis.js [--ms N]

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stopServer } from './bench_servers';
import { RedisServer, startRedisCluster, type RedisCluster } from '../../test/support/redis';

const REPO = path.resolve(__dirname, '../../..');
const DC_SERVER = path.join(REPO, 'dist/src/cli/dc_server.js');
const WORKER = path.join(REPO, 'dist/scripts/bench/cache_bench.js');
const OPS = ['GET', 'HAVE', 'REMOVE', 'ADD'] as const;
const CLIENTS = [1, 4, 16];
const SESSIONS = 512;
const SIZE = 150;

type Target = { readonly path: string };

function runLoad(args: Record<string, unknown>): Promise<{ ops: number; ms: number; nextBase?: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '1', process.execPath, WORKER, '--worker', JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`load worker exited ${code}`))));
  });
}

/** Starts dc_server on CPU 0 listening on `sock`, with `extra` options; resolves once it listens. */
async function startDcServer(sock: string, extra: readonly string[]): Promise<ChildProcess> {
  const child = spawn('taskset', ['-c', '0', process.execPath, DC_SERVER, '-listen', `UNIX:${sock}`, '-loglevel', 'notice', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const until = Date.now() + 15_000;
  while (!(/listening/.test(text) && fs.existsSync(sock))) {
    if (child.exitCode !== null || Date.now() > until) throw new Error(`dc_server did not start: ${text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

function pinToCpu0(pid: number): void {
  spawnSync('taskset', ['-pc', '0', String(pid)], { stdio: 'ignore' });
}

/** ops/s per (op, clients) against one dc_server. */
async function measure(target: Target, ms: number): Promise<Map<string, number>> {
  await runLoad({ target, op: 'FILL', clients: 1, ms: 0, ids: SESSIONS, size: SIZE, base: 0 });
  const bases = { add: SESSIONS, remove: 0 };
  for (const op of ['GET', 'HAVE'] as const) await runLoad({ target, op, clients: 4, ms: Math.ceil(ms / 3), ids: SESSIONS, size: SIZE, base: 0 });
  const rates = new Map<string, number>();
  for (const op of OPS) {
    for (const clients of CLIENTS) {
      const base = op === 'REMOVE' ? bases.remove : bases.add;
      const r = await runLoad({ target, op, clients, ms, ids: SESSIONS, size: SIZE, base });
      if (op === 'REMOVE') bases.remove = Math.max(bases.remove, r.nextBase ?? 0);
      if (op === 'ADD') bases.add = Math.max(bases.add, r.nextBase ?? 0);
      rates.set(`${op} ${clients}`, (r.ops * 1000) / r.ms);
    }
  }
  return rates;
}

/** Prints the Redis rows: in memory, on Redis standalone, on a Redis Cluster, and the ratios. */
export async function benchRedisRows(options: { readonly ms: number }): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-bench-redis-'));
  const cleanups: Array<() => unknown> = [];
  const hook = { after: (fn: () => unknown) => void cleanups.push(fn) };
  try {
    const memorySock = path.join(dir, 'memory.sock');
    const memory = await startDcServer(memorySock, []);
    const inMemory = await measure({ path: memorySock }, options.ms).finally(() => stopServer({ child: memory }));

    const redis = await RedisServer.start(path.join(dir, 'redis'), undefined);
    if (typeof redis === 'symbol') throw new Error('redis-server could not start');
    cleanups.push(() => redis.stop());
    pinToCpu0(redis.pid);
    const standaloneSock = path.join(dir, 'standalone.sock');
    const standalone = await startDcServer(standaloneSock, ['-redis', redis.unixUrl]);
    const onRedis = await measure({ path: standaloneSock }, options.ms).finally(() => stopServer({ child: standalone }));

    const cluster: RedisCluster = await startRedisCluster(hook);
    cluster.nodes.forEach((n) => pinToCpu0(n.pid));
    const clusterSock = path.join(dir, 'cluster.sock');
    const clustered = await startDcServer(clusterSock, cluster.urls.slice(0, 3).flatMap((u) => ['-redis', u]));
    const onCluster = await measure({ path: clusterSock }, options.ms).finally(() => stopServer({ child: clustered }));

    console.log(`\ndc_server on Redis (redis-server ${redisVersion()}; all servers on CPU 0, load on CPU 1; ${SESSIONS} sessions of ${SIZE} B; unix socket to dc_server)`);
    console.log('op     clients   memory ops/s   redis ops/s  cluster ops/s  redis/memory  cluster/memory');
    for (const op of OPS) {
      for (const clients of CLIENTS) {
        const key = `${op} ${clients}`;
        const m = inMemory.get(key)!;
        const r = onRedis.get(key)!;
        const c = onCluster.get(key)!;
        console.log(`${op.padEnd(6)} ${String(clients).padStart(7)} ${m.toFixed(0).padStart(14)} ${r.toFixed(0).padStart(13)} ${c.toFixed(0).padStart(14)} ${(r / m).toFixed(2).padStart(13)} ${(c / m).toFixed(2).padStart(15)}`);
      }
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function redisVersion(): string {
  const out = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout;
  return /v=(\S+)/.exec(out)?.[1] ?? 'unknown';
}

if (require.main === module) {
  const i = process.argv.indexOf('--ms');
  const ms = i >= 0 ? Number(process.argv[i + 1]) : 1000;
  benchRedisRows({ ms }).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
