#!/usr/bin/env node
// dc_server: the distcache SSL session cache server. Options of the original (-listen -sessions
// -progress -daemon -pidfile -user -sockowner -sockgroup -sockperms -killable) plus ours
// (-listen repeatable, -sessions 0 with -maxmemory, -loglevel, -snapshot) -> frozen config -> one
// cache engine -> runService, every connection served by the engine. With -snapshot the sessions
// are loaded at start and written back at an orderly stop (SIGTERM, SIGINT, -killable), so a
// restart keeps them.

import path from 'node:path';
import { createLogger } from '../log/index';
import { detectMode, runService } from '../activation/index';
import { MAX_PROGRESS, ProgressReporter } from '../cache/progress';
import { DEFAULT_CAPACITY, MAX_CAPACITY, MIN_CAPACITY, MIN_MAX_BYTES } from '../cache/stores/memory_store';
import { SlabStore } from '../cache/stores/slab_store';
import { createCacheEngine, defaultClock, type AnswerResult } from '../cache/engine';
import { cachePumpEnabled } from '../cache/pumped_session';
import type { Operation } from '../cache/wire/constants';
import { SnapshotKeeper } from '../cache/snapshot/snapshot_keeper';
import { EXIT, UsageError } from '../errors';
import { invalidArgument } from './single_dash';
import { DAEMON_USAGE, METRICS_USAGE, daemonSettingsOf, decimalOption, installKillable, metricsListenerOf, parseCacheArgs, prepareRuntime, runMain } from './cache_cli';
import type { CacheMetrics } from '../metrics/cache_metrics';
import { createRedisCacheEngine, REDIS_REPEATABLE, REDIS_STRING_OPTIONS, REDIS_USAGE, redisSettingsOf } from './dc_server_redis';

const PROGRAM = 'dc_server';
/** -maxmemory bounds, in MB. */
const MAX_MEMORY_MB = 1024 * 1024;
/** How often the statistics line is looked at when there is no traffic (the original's select timeout). */
const PROGRESS_POLL_MS = 500;
/** -idle bound, ms: at most 7 days (DC_MAX_EXPIRY: no session outlives that anyway). */
const MAX_IDLE_MS = 604_800_000;
/** -snapshot-interval bound, seconds (one day). */
const MAX_SNAPSHOT_INTERVAL_S = 86_400;

const USAGE = [
  '',
  'Usage: dc_server [options]     where options are:',
  '  -listen <addr>     (serve the cache on this address; ours: repeatable, and not needed',
  '                      when systemd or inetd hands over the sockets)',
  `  -sessions <num>    (most sessions held: ${MIN_CAPACITY}..${MAX_CAPACITY.toLocaleString('en-US')}, def: ${DEFAULT_CAPACITY};`,
  '                      ours: 0 = no count limit, bounded by -maxmemory instead)',
  '  -maxmemory <MB>    (ours: bound on stored session bytes; def: 256 with -sessions 0, else none)',
  `  -progress <num>    (print the statistics line at least every <num> operations, 0..${MAX_PROGRESS})`,
  '  -idle <ms>         (ours: close a connection silent both ways this long; def: 0 = never, as',
  '                      the original: Apache and dc_client keep idle connections open)',
  ...REDIS_USAGE,
  '  -snapshot <file>   (ours: keep the sessions across a restart in this file, written at',
  '                      stop and read at start; \'none\' or absent: no snapshot; the systemd',
  '                      unit and init script use /run/distcache/dc_server.snapshot)',
  `  -snapshot-interval <s> (ours: also write the snapshot every <s> seconds, 1..${MAX_SNAPSHOT_INTERVAL_S},`,
  '                      so a crash loses at most that much; def: 0 = only at stop)',
  METRICS_USAGE,
  ...DAEMON_USAGE,
  '  -<h|help|?>        (print this text)',
  '',
  ' Addresses: IP:port  IP:host:port  IPv4:host:port  IP:[v6addr]:port  UNIX:/path',
  ' Example: dc_server -listen IP:9001',
  '   serves a session cache on TCP port 9001 of every IPv4 interface.',
  '',
].join('\n') + '\n';

async function main(): Promise<number> {
  const log = createLogger(PROGRAM);
  const values = parseCacheArgs(
    process.argv.slice(2),
    { strings: ['listen', 'sessions', 'progress', 'maxmemory', 'idle', 'snapshot', 'snapshot-interval', 'metrics', ...REDIS_STRING_OPTIONS], booleans: [], repeatable: ['listen', ...REDIS_REPEATABLE] },
    USAGE,
  );
  const listenTexts = values.listen as readonly string[];
  // Under systemd or inetd the sockets are inherited; only a standalone server needs -listen.
  if (listenTexts.length === 0 && detectMode(values.daemon === true ? 'daemon' : 'auto').kind === 'standalone') {
    process.stderr.write('Error, must provide -listen\n');
    return EXIT.FAILED;
  }
  const capacity = decimalOption(values, 'sessions', { min: 0, max: MAX_CAPACITY }) ?? DEFAULT_CAPACITY;
  if (capacity !== 0 && capacity < MIN_CAPACITY) throw new UsageError(invalidArgument('sessions'));
  const progress = decimalOption(values, 'progress', { min: 0, max: MAX_PROGRESS }) ?? 0;
  const maxMemoryMb = decimalOption(values, 'maxmemory', { min: Math.ceil(MIN_MAX_BYTES / (1024 * 1024)), max: MAX_MEMORY_MB });
  const idleMs = decimalOption(values, 'idle', { min: 0, max: MAX_IDLE_MS }) ?? 0;
  const snapshotText = values.snapshot as string | undefined;
  if (snapshotText === '') throw new UsageError(invalidArgument('snapshot'));
  // Absolute, so the log names the file unambiguously whatever the working directory.
  const snapshotFile = snapshotText === undefined || snapshotText === 'none' ? undefined : path.resolve(snapshotText);
  const snapshotIntervalS = decimalOption(values, 'snapshot-interval', { min: 0, max: MAX_SNAPSHOT_INTERVAL_S }) ?? 0;
  if (snapshotIntervalS > 0 && snapshotFile === undefined) {
    throw new UsageError(`Error, -snapshot-interval needs -snapshot <file>\n${invalidArgument('snapshot-interval')}`);
  }
  const daemon = daemonSettingsOf(values);
  const redis = redisSettingsOf(values);
  if (redis !== undefined && snapshotFile !== undefined) {
    throw new UsageError(`Error, -snapshot has no meaning with -redis: the sessions live in Redis, not in this process\n${invalidArgument('snapshot')}`);
  }
  const runtime = await prepareRuntime(log, listenTexts, daemon);
  const config = Object.freeze({
    capacity,
    progress,
    idleMs,
    ...(snapshotFile === undefined ? {} : { snapshotFile }),
    snapshotIntervalMs: snapshotIntervalS * 1000,
    ...(maxMemoryMb === undefined ? {} : { maxBytes: maxMemoryMb * 1024 * 1024 }),
    daemon,
  });

  const store = new SlabStore({
    capacity: config.capacity,
    ...(config.maxBytes === undefined ? {} : { maxBytes: config.maxBytes }),
  });
  const reporter = new ProgressReporter(config.progress, defaultClock());
  const report = (): void => {
    const line = reporter.check(engine.clock(), engine.stats.operations, () => engine.stats.sessions);
    if (line !== undefined) log.notice(line);
  };
  // The original looked at the counters after every burst of network activity; looking after
  // every answer lets "-progress N" trip at exactly N operations. Without N only the once-a-second
  // line is due, which the poll below finds: no clock read and closure per answer for it.
  let metrics: CacheMetrics | undefined;
  const everyAnswer = config.progress > 0;
  const afterAnswer = (operation: Operation, result: AnswerResult, startedMs: number): void => {
    metrics?.answered(operation, result, startedMs);
    if (everyAnswer) report();
  };
  // With -redis the sessions live in Redis (the small store above stays unused, and -snapshot
  // was refused above: Redis keeps them across our restarts).
  const onRedis =
    redis === undefined ? undefined : await createRedisCacheEngine(redis, { idleMs: config.idleMs, afterAnswer, failed: (operation) => metrics?.redisFailed(operation), log });
  const engine = onRedis?.engine ?? createCacheEngine({ store, idleMs: config.idleMs, afterAnswer, log });
  const snapshot =
    config.snapshotFile === undefined ? undefined : new SnapshotKeeper(config.snapshotFile, store, { clock: engine.clock, log, intervalMs: config.snapshotIntervalMs });
  const watched = metricsListenerOf(values, runtime, PROGRAM, (registry) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- only with -metrics
    const { CacheMetrics } = require('../metrics/cache_metrics') as typeof import('../metrics/cache_metrics');
    return new CacheMetrics(registry, {
      engine: engine.stats,
      ...(onRedis === undefined ? { store } : { redis: onRedis.redis }),
      ...(snapshot === undefined ? {} : { snapshot }),
    });
  });
  metrics = watched?.watcher;
  const signals = installKillable({ killable: config.daemon.killable, log });
  const service = await runService({
    program: PROGRAM,
    log,
    handlers: { main: engine.serve },
    // Connections accepted in the native socket pump, unless DISTKIT_CACHE_IO=stream.
    ...(cachePumpEnabled() ? { pumped: engine.servePumped } : {}),
    ...runtime,
    maxConnections: 0,
    drainTimeoutMs: 2000,
    status: () => `${engine.stats.sessions} sessions, ${engine.stats.operations} operations`,
    ...(watched === undefined ? {} : { metrics: watched.service }),
  });
  const poll = setInterval(report, PROGRESS_POLL_MS);
  poll.unref();
  // Synchronous, right after the listeners opened and before any request is read: the first
  // request already sees the sessions of the last run, and the mode line stays the first line.
  snapshot?.load();
  snapshot?.start();
  signals.attach(service);
  const code = await service.done;
  clearInterval(poll);
  // Every connection has been answered: what the clients were told is stored is in the file.
  snapshot?.stop();
  await engine.close();
  return code;
}

runMain(main, USAGE, createLogger(PROGRAM));
