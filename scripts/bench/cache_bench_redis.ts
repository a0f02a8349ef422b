// The Redis rows of `npm run bench -- cache` (issue 18): our dc_server on Redis, standalone (one
// redis-server, dc_server talking to it over a unix socket) and a Redis Cluster of three masters
// with one replica each (test/support/redis.ts, loopback TCP), beside our dc_server in memory and
// the C server, for GET/HAVE/REMOVE/ADD with 1, 4 and 16 persistent clients, 512 pre-filled
// sessions of 150 B, clients on dc_server's unix socket. Two layouts: in "ours redis" and "ours
// cluster" every server process (dc_server and redis-server, or all six cluster nodes, every
// thread) is pinned to the server CPU: the Redis rows get the same one core as the in-memory
// server, for the store and the front end together, and their CPU µs/op and memory count both.
// In "redis apart" and "cluster apart" the redis-servers run on the load generator's CPU instead,
// as in production, where Redis has machines of its own; that CPU's busy share (generator and
// redis-servers) is printed under each goal row, since a saturated CPU 1 caps those figures.
// "redis ioredis" is the standalone row with the native link off (DISTKIT_REDIS_LINK=off). Goal: on Redis at least half the in-memory ops/s
// with 16 clients: after the table, one row per op gives that ratio at 16 clients as the median
// of --rounds interleaved rounds (default 5) with its spread, and the ratio of server CPU µs/op
// (which the other work on a shared machine moves far less), each against the goal; under each,
// where that CPU went per operation (when the bench may make cgroups): dc_server, its
// redis-servers, and the load generator.
// `npm run bench -- cache --only-redis` runs these rows alone.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fillAll, LOAD_CPUS, measure, SERVER_CPUS, printHeader, runFill, startAll, stopAll, type Bench, type Table } from './cache_cells';
import type { LoadResult } from './cache_load';
import { cTarget, oursTarget, trackPid, type CacheBenchTarget, type RunningServer, type StartOptions } from './cache_targets';
import { CpuGroups } from './cpu_groups';
import { RedisServer, startRedisCluster } from '../../test/support/redis';

const SESSIONS = 512;
const SIZE = 150;
/** The goal: ops/s on Redis over ops/s in memory, 16 clients. */
const GOAL_RATIO = 0.5;
const GOAL_CLIENTS = 16;

/** Redis processes serving one dc_server: the URLs to give it (-redis each), their PIDs, a stop. */
interface Backend {
  readonly urls: readonly string[];
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

/** Pins every thread of `pid` (redis-server has I/O and background threads) to `cpus`. */
function pin(pid: number, cpus: string): void {
  const r = spawnSync('taskset', ['-a', '-pc', cpus, String(pid)], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`taskset could not pin redis-server ${pid} to CPU ${cpus}`);
}

/** Pins the started `pids` to `cpus` and has the bench's exit kill them; `stop` ends them. */
function backendOf(urls: readonly string[], pids: readonly number[], stop: () => Promise<unknown>, cpus: string): Backend {
  pids.forEach((pid) => pin(pid, cpus));
  const untrack = pids.map(trackPid);
  return {
    urls,
    pids,
    async stop() {
      await stop();
      untrack.forEach((u) => u());
    },
  };
}

async function startStandalone(o: StartOptions): Promise<Backend> {
  const redis = await RedisServer.start(path.join(o.dir, 'redis'), undefined);
  if (typeof redis === 'symbol') throw new Error('redis-server could not start');
  return backendOf([redis.unixUrl], [redis.pid], () => redis.stop(), o.cpus);
}

async function startCluster(o: StartOptions): Promise<Backend> {
  // startRedisCluster registers its cleanups (nodes, temp dir) on a test's after hook: run them at stop.
  const cleanups: (() => unknown)[] = [];
  try {
    const cluster = await startRedisCluster({ after: (fn) => void cleanups.push(fn) });
    return backendOf(cluster.urls.slice(0, 3), cluster.nodes.map((n) => n.pid), async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    }, o.cpus);
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await cleanup();
    throw error;
  }
}

/** Where a Redis target's redis-servers run, and how dc_server talks to them. */
interface RedisLayout {
  /** The CPUs of its redis-servers: undefined = dc_server's (the server CPU); LOAD_CPUS = the
   * load generator's, as if Redis ran on machines of its own. */
  readonly redisCpus?: string;
  /** More environment for dc_server (DISTKIT_REDIS_LINK=off: every request through ioredis). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Our dc_server on the Redis `backend` starts, on the server CPU; its redis-servers on the
 * layout's CPUs. */
function redisTarget(repo: string, name: string, backend: (o: StartOptions) => Promise<Backend>, layout: RedisLayout = {}): CacheBenchTarget {
  return {
    name,
    fillDepth: 32,
    cannot: () => undefined,
    async start(o): Promise<RunningServer> {
      const redis = await backend({ ...o, cpus: layout.redisCpus ?? o.cpus });
      try {
        const front = await oursTarget(repo, { name, sized: false, extra: redis.urls.flatMap((url) => ['-redis', url]), ...(layout.env === undefined ? {} : { env: layout.env }) }).start(o);
        const pids = [front.pid, ...redis.pids];
        return { ...front, cpuPids: pids, rssPids: pids, stop: async () => {
          await front.stop();
          await redis.stop();
        } };
      } catch (error) {
        await redis.stop();
        throw error;
      }
    },
  };
}

function redisVersion(): string {
  const out = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout ?? '';
  return /v=(\S+)/.exec(out)?.[1] ?? 'unknown';
}

/** Prints the Redis rows: ours in memory, C, ours on Redis standalone and on a Redis Cluster, each
 * in two layouts: the redis-servers on dc_server's CPU (one core for store and front end), and
 * "apart", on the load generator's CPU (as if Redis ran on machines of its own); and on the
 * standalone Redis through ioredis alone (the native link off), for its gain. */
export async function benchRedisRows(bench: Bench, repo: string, cPrefix: string, rounds = 5): Promise<void> {
  const apart: RedisLayout = { redisCpus: LOAD_CPUS };
  const table: Table = {
    targets: [
      oursTarget(repo),
      cTarget(cPrefix),
      redisTarget(repo, 'ours redis', startStandalone),
      redisTarget(repo, 'ours cluster', startCluster),
      redisTarget(repo, 'redis apart', startStandalone, apart),
      redisTarget(repo, 'cluster apart', startCluster, apart),
      redisTarget(repo, 'redis ioredis', startStandalone, { env: { DISTKIT_REDIS_LINK: 'off' } }),
    ],
    ops: ['GET', 'HAVE', 'REMOVE', 'ADD'],
    ratios: [
      { label: 'redis/mem', of: 'ours redis', over: 'ours' },
      { label: 'cluster/mem', of: 'ours cluster', over: 'ours' },
      { label: 'apart/mem', of: 'redis apart', over: 'ours' },
      { label: 'c.apart/mem', of: 'cluster apart', over: 'ours' },
      { label: 'redis/C', of: 'ours redis', over: 'C' },
    ],
  };
  console.log(`dc_server on Redis (redis-server ${redisVersion()}, standalone on a unix socket; cluster: 3 masters + 3 replicas on loopback TCP). dc_server always on the server CPU ${SERVER_CPUS}; "ours redis"/"ours cluster": every redis-server on the server CPU too (memory and CPU µs/op count dc_server and its redis-servers together); "redis apart"/"cluster apart": the redis-servers on the load generator's CPU ${LOAD_CPUS}, as if Redis ran on machines of its own (watch that CPU's busy share in the cpu lines: saturated, it caps the figures); "redis ioredis": standalone, redis on the server CPU, with the native link off (DISTKIT_REDIS_LINK=off)`);
  printHeader(table);
  await runFill(bench, table, 'unix', SESSIONS, SIZE);
  const t = table.targets;
  await printGoalRows(bench, [t[0]!, t[2]!, t[3]!, t[4]!, t[5]!, t[6]!], rounds);
}

/** Where the CPU of a goal cell goes: each target's front process (dc_server) and its
 * redis-servers in cgroups of their own (accounting only: their pinning and scheduling stay as
 * they are), and the load generator's own CPU time (getrusage, reported by it). Per operation. */
class CpuSplit {
  readonly #groups: CpuGroups;
  readonly #servers: readonly RunningServer[];
  readonly #before: number[][] = [];
  /** Per target, per round: [dc_server, redis-servers, generator] µs/op, and the share of the
   * measurement's wall time the generator and the redis-servers used together (CPU 1's busy share
   * when the redis-servers run there). */
  readonly #rounds: number[][][];

  private constructor(groups: CpuGroups, servers: readonly RunningServer[]) {
    this.#groups = groups;
    this.#servers = servers;
    this.#rounds = servers.map(() => []);
  }

  static open(servers: readonly RunningServer[]): CpuSplit | undefined {
    const groups = CpuGroups.open(servers.flatMap((_, i) => [`front${i}`, `redis${i}`]));
    if (groups === undefined) return undefined;
    for (const [i, server] of servers.entries()) {
      const [front, ...redis] = server.cpuPids ?? [server.pid];
      groups.account(`front${i}`, front!);
      for (const pid of redis) groups.account(`redis${i}`, pid);
    }
    return new CpuSplit(groups, servers);
  }

  #used(i: number): number[] {
    return [this.#groups.usedMs(`front${i}`), this.#groups.usedMs(`redis${i}`)];
  }

  start(i: number): void {
    this.#before[i] = this.#used(i);
  }

  stop(i: number, r: LoadResult): void {
    const after = this.#used(i);
    const perOp = (ms: number): number => (ms * 1000) / Math.max(1, r.ops);
    const redisMs = after[1]! - this.#before[i]![1]!;
    this.#rounds[i]!.push([perOp(after[0]! - this.#before[i]![0]!), perOp(redisMs), perOp(r.cpuMs), (redisMs + r.cpuMs) / Math.max(1, r.ms)]);
  }

  /** One op's medians per target, then forgets the rounds for the next op. */
  report(names: readonly string[]): string {
    const text = this.#servers.map((server, i) => {
      const rounds = this.#rounds[i]!;
      const [front, redis, gen, share] = [0, 1, 2, 3].map((k) => median(rounds.map((r) => r[k]!)));
      const withRedis = (server.cpuPids?.length ?? 1) > 1;
      const redisText = withRedis ? ` + redis-server ${redis!.toFixed(1)}` : '';
      rounds.length = 0;
      return `${names[i]}: dc_server ${front!.toFixed(1)}${redisText}, generator ${gen!.toFixed(1)} (generator${withRedis ? '+redis' : ''} ${(share! * 100).toFixed(0)}% of a CPU)`;
    });
    return text.join('; ');
  }

  close(): void {
    this.#groups.close();
  }
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
/** The lowest and highest of `values`, then each round's in order. */
const spread = (values: readonly number[]): string => `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}; rounds ${values.map((v) => v.toFixed(2)).join(' ')}`;

/** The goal rows: for each op at 16 clients, `rounds` rounds of in memory, Redis and cluster back
 * to back; per round the ratios of ops/s and of CPU µs/op (memory's over Redis's: above 1 means
 * cheaper), then their median and spread against the goal. */
async function printGoalRows(bench: Bench, targets: readonly CacheBenchTarget[], rounds: number): Promise<void> {
  const lives = await startAll(bench, targets, 'unix', SESSIONS, SIZE);
  const split = CpuSplit.open(lives.map((live) => live!.server));
  try {
    await fillAll(bench, targets, lives, SESSIONS, SIZE);
    for (const live of lives) await measure(bench, live!, { op: 'GET', clients: 4, ms: Math.ceil(bench.ms / 2), ids: SESSIONS, size: SIZE });
    console.log(`goal: on Redis at least ${GOAL_RATIO} of the in-memory ops/s with ${GOAL_CLIENTS} clients (median of ${rounds} interleaved rounds; in brackets the spread, then each round in order; cpu = in-memory CPU µs/op over the Redis one, dc_server and its redis-servers together)`);
    for (const op of ['GET', 'HAVE', 'REMOVE', 'ADD'] as const) {
      const ops: number[][] = targets.map(() => []);
      const cpu: number[][] = targets.map(() => []);
      for (let round = 0; round < rounds; round++) {
        for (const [i, live] of lives.entries()) {
          split?.start(i);
          const r = await measure(bench, live!, { op, clients: GOAL_CLIENTS, ms: bench.ms, ids: SESSIONS, size: SIZE });
          split?.stop(i, r);
          ops[i]!.push((r.ops * 1000) / r.ms);
          cpu[i]!.push(r.serverUs);
        }
      }
      const cells = targets.slice(1).map((_, k) => {
        const i = k + 1;
        const opsRatio = ops[i]!.map((v, round) => v / ops[0]![round]!);
        const cpuRatio = cpu[i]!.map((v, round) => cpu[0]![round]! / v);
        const verdict = median(opsRatio) >= GOAL_RATIO ? 'ok' : 'UNDER';
        return `${targets[i]!.name}/mem ops/s ${median(opsRatio).toFixed(2)} (${spread(opsRatio)}) ${verdict}, cpu ${median(cpuRatio).toFixed(2)} (${spread(cpuRatio)}; ${median(cpu[i]!).toFixed(1)} vs ${median(cpu[0]!).toFixed(1)} µs/op)`;
      });
      console.log(`goal ${op.padEnd(6)} ${GOAL_CLIENTS} clients: ${cells.join('; ')}`);
      if (split !== undefined) console.log(`  cpu µs/op ${op}, ${GOAL_CLIENTS} clients (cgroup; median of ${rounds}): ${split.report(targets.map((t) => t.name))}`);
    }
  } finally {
    await stopAll(lives);
    split?.close();
  }
}

