// dc_server's Redis options (issue 18): -redis URL (repeatable: a Redis Cluster's seed nodes),
// -redis-password-file FILE and -redis-prefix P. With -redis, dc_server keeps no sessions itself
// and serves them from Redis (src/cache/redis_engine); -sessions and -maxmemory then have no
// meaning (Redis's maxmemory and maxmemory-policy volatile-ttl bound it) and are refused.

import { UsageError } from '../errors';
import type { Logger } from '../log/index';
import type { CacheEngine, CacheEngineOptions } from '../cache/engine';
import { createRedisEngine, type RedisEngineOptions } from '../cache/redis_engine';
import { RedisConnection } from '../redis/redis_connection';
import type { SingleDashValues } from './single_dash';

export const REDIS_STRING_OPTIONS = ['redis', 'redis-password-file', 'redis-prefix'] as const;
export const REDIS_REPEATABLE = ['redis'] as const;
/** Sessions live under this key prefix unless -redis-prefix says otherwise. */
export const DEFAULT_REDIS_PREFIX = 'dc:';
/** A Redis request not answered within this many ms is answered 0x01 (failed lookup or add). */
export const REDIS_REQUEST_TIMEOUT_MS = 1000;

export const REDIS_USAGE = [
  '  -redis <url>       (ours: keep sessions in Redis, not in this process: redis://host:port,',
  '                      rediss://host:port (TLS) or unix:///path; repeat for a Redis Cluster\'s',
  '                      seed nodes. Sessions are TLS secrets: see the README on securing Redis)',
  '  -redis-password-file <file> (ours: the Redis password, on the first line of this file)',
  `  -redis-prefix <p>  (ours: key prefix of the sessions in Redis; def: ${DEFAULT_REDIS_PREFIX})`,
];

export interface RedisSettings {
  readonly urls: readonly string[];
  readonly passwordFile?: string;
  readonly prefix: string;
}

/** The Redis settings the options give, or undefined without -redis. */
export function redisSettingsOf(values: SingleDashValues): RedisSettings | undefined {
  const urls = values['redis'] as readonly string[];
  const passwordFile = values['redis-password-file'] as string | undefined;
  const prefix = values['redis-prefix'] as string | undefined;
  if (urls.length === 0) {
    if (passwordFile !== undefined || prefix !== undefined) throw new UsageError('Error, -redis-password-file and -redis-prefix need -redis');
    return undefined;
  }
  for (const name of ['sessions', 'maxmemory']) {
    if (values[name] !== undefined) throw new UsageError(`Error, -${name} has no meaning with -redis: Redis's maxmemory bounds the sessions`);
  }
  return { urls, prefix: prefix ?? DEFAULT_REDIS_PREFIX, ...(passwordFile === undefined ? {} : { passwordFile }) };
}

/** How long dc_server waits for Redis before it listens anyway (answering failures until Redis is there). */
export const REDIS_START_WAIT_MS = 5000;

/** The engine serving sessions from Redis, once Redis answers (or REDIS_START_WAIT_MS passed),
 * and its connection (whose state the metrics read). */
export async function createRedisCacheEngine(
  settings: RedisSettings,
  options: { idleMs: number; afterAnswer: CacheEngineOptions['afterAnswer']; failed: RedisEngineOptions['failed']; log: Logger },
): Promise<{ engine: CacheEngine; redis: RedisConnection }> {
  const redis = new RedisConnection(settings.urls, {
    requestTimeoutMs: REDIS_REQUEST_TIMEOUT_MS,
    batched: true,
    log: options.log,
    ...(settings.passwordFile === undefined ? {} : { passwordFile: settings.passwordFile }),
  });
  const ready = await redis.waitReady(REDIS_START_WAIT_MS);
  options.log.notice('store redis', { urls: settings.urls.join(','), mode: redis.mode, prefix: settings.prefix, state: ready ? 'up' : 'down' });
  const engine = createRedisEngine({ redis, prefix: settings.prefix, requestTimeoutMs: REDIS_REQUEST_TIMEOUT_MS, idleMs: options.idleMs, afterAnswer: options.afterAnswer, failed: options.failed, log: options.log });
  return { engine, redis };
}
