// distccd's object-cache options (ours, issue 16; C distccd has none), read from the parsed
// command line into the frozen ObjectCacheConfig that distccd.ts builds the cache from:
//
//   --cache-dir DIR                  the local store (default /var/cache/distccd)
//   --cache-size SIZE                its limit, bytes or K/M/G (KiB...; default 2G); 0 = off
//   --no-cache                       no object cache at all
//   --cache-max-entry SIZE           results larger than this are not stored (default 64M)
//   --cache-redis URL                a farm's Redis (repeatable: Redis Cluster seed nodes)
//   --cache-redis-password-file FILE its password (never on the command line)
//   --cache-secret-file FILE         the farm secret entries are signed with (required with Redis)
//   --cache-redis-ttl SECONDS        how long a Redis entry lives (default 7 days)
//   --cache-redis-timeout MS         how long a job waits for Redis before it compiles (default 50)

import { EXIT, UsageError } from '../errors';
import type { ObjectCacheConfig } from '../compile/object_cache/open_object_cache';

export type { ObjectCacheConfig };

export const DEFAULT_CACHE_DIR = '/var/cache/distccd';
export const DEFAULT_CACHE_SIZE = 2 * 1024 ** 3;
export const DEFAULT_CACHE_MAX_ENTRY = 64 * 1024 ** 2;
export const DEFAULT_REDIS_TTL_S = 7 * 24 * 3600;
/** A Redis get or put not answered in this many ms gives up: a slow Redis must not slow jobs. */
export const DEFAULT_REDIS_TIMEOUT_MS = 50;

export const CACHE_STRINGS = ['cache-dir', 'cache-size', 'cache-max-entry', 'cache-redis', 'cache-redis-password-file', 'cache-secret-file', 'cache-redis-ttl', 'cache-redis-timeout'];

function bad(message: string): UsageError {
  return new UsageError(message, { exitCode: EXIT.BAD_ARGUMENTS });
}

/** "2G", "512M", "64k", "1000": bytes (K/M/G are powers of 1024). */
export function parseSize(name: string, text: string): number {
  const m = /^\s*([0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*$/.exec(text);
  if (m === null) throw bad(`--${name} ${JSON.stringify(text)} is not a size: give bytes, or a number with K, M or G`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const bytes = Number(m[1]) * scale;
  if (!Number.isSafeInteger(bytes)) throw bad(`--${name} ${JSON.stringify(text)} is too large`);
  return bytes;
}

function lastOf(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return String(Array.isArray(value) ? value[value.length - 1] : value);
}

/** The cache settings of a parsed command line; undefined = no cache (--no-cache, or size 0 and no Redis). */
export function cacheConfigOf(parsed: Record<string, unknown>): ObjectCacheConfig | undefined {
  const urls = parsed['cache-redis'] === undefined ? [] : ([] as unknown[]).concat(parsed['cache-redis']).map(String);
  const secretFile = lastOf(parsed['cache-secret-file']);
  const passwordFile = lastOf(parsed['cache-redis-password-file']);
  const ttlText = lastOf(parsed['cache-redis-ttl']);
  const timeoutText = lastOf(parsed['cache-redis-timeout']);
  if (urls.length === 0 && (secretFile !== undefined || passwordFile !== undefined || ttlText !== undefined || timeoutText !== undefined)) {
    throw bad('--cache-secret-file, --cache-redis-password-file, --cache-redis-ttl and --cache-redis-timeout only mean something with --cache-redis URL');
  }
  for (const url of urls) {
    if (!/^(rediss?|unix):\/\/./.test(url)) throw bad(`--cache-redis ${JSON.stringify(url)} is not a redis://, rediss:// or unix:// URL`);
  }
  if (urls.length > 0 && secretFile === undefined) {
    throw bad('--cache-redis needs --cache-secret-file FILE: the farm secret every entry is signed with (anyone who can write to the Redis could otherwise poison every object of the farm)');
  }
  let ttlSeconds = DEFAULT_REDIS_TTL_S;
  if (ttlText !== undefined) {
    if (!/^[0-9]+$/.test(ttlText.trim()) || Number(ttlText) < 1 || Number(ttlText) > 2 ** 31) throw bad(`--cache-redis-ttl ${JSON.stringify(ttlText)} is not a whole number of seconds from 1 to ${2 ** 31}`);
    ttlSeconds = Number(ttlText);
  }
  let timeoutMs = DEFAULT_REDIS_TIMEOUT_MS;
  if (timeoutText !== undefined) {
    if (!/^[0-9]+$/.test(timeoutText.trim()) || Number(timeoutText) < 1 || Number(timeoutText) > 60_000) throw bad(`--cache-redis-timeout ${JSON.stringify(timeoutText)} is not a whole number of milliseconds from 1 to 60000`);
    timeoutMs = Number(timeoutText);
  }
  if (parsed['cache'] === false) return undefined;
  const sizeText = lastOf(parsed['cache-size']);
  const maxBytes = sizeText === undefined ? DEFAULT_CACHE_SIZE : parseSize('cache-size', sizeText);
  const entryText = lastOf(parsed['cache-max-entry']);
  const maxEntryBytes = entryText === undefined ? DEFAULT_CACHE_MAX_ENTRY : parseSize('cache-max-entry', entryText);
  if (maxEntryBytes === 0) throw bad('--cache-max-entry must be above 0 (use --no-cache to turn the cache off)');
  if (maxBytes === 0 && urls.length === 0) return undefined;
  return Object.freeze({
    dir: lastOf(parsed['cache-dir']) ?? DEFAULT_CACHE_DIR,
    maxBytes,
    maxEntryBytes,
    redis: urls.length === 0 ? undefined : Object.freeze({ urls, passwordFile, secretFile: secretFile!, ttlSeconds, timeoutMs }),
  });
}

/** The help text's lines for these options. */
export const CACHE_HELP = `  Object cache:
    --cache-dir DIR            local object cache (${DEFAULT_CACHE_DIR})
    --cache-size SIZE          its limit, bytes or K/M/G (2G); 0 = no local cache
    --no-cache                 no object cache at all
    --cache-max-entry SIZE     largest result stored (64M)
    --cache-redis URL          farm cache on Redis (repeatable: cluster seed nodes)
    --cache-redis-password-file FILE   the Redis password
    --cache-secret-file FILE   farm secret entries are signed with (needed with Redis)
    --cache-redis-ttl SECONDS  how long Redis keeps an entry (604800)
    --cache-redis-timeout MS   how long a job waits for Redis, then compiles (${DEFAULT_REDIS_TIMEOUT_MS})
`;
