// Builds the object cache a daemon was configured with: the disk tier (made and given to the
// daemon's account when started as root), then the Redis tier when --cache-redis names one, and
// logs the state of each at start. A disk tier that cannot be opened is logged and left out: the
// daemon serves uncached rather than not at all. A Redis tier asked for but impossible to set up
// (no secret) stops the start: the operator asked for a shared cache and must know.

import fs from 'node:fs';
import type { Logger } from '../../log/logger';
import { DistkitError, EXIT } from '../../errors';
import { DiskStore } from './disk_store';
import { isIntactEntry } from './entry_codec';
import { ObjectCache } from './object_cache';
import type { ObjectTier } from './object_store';

export const REDIS_PREFIX = 'distccd:obj:';

export interface RedisCacheConfig {
  readonly urls: readonly string[];
  readonly passwordFile?: string;
  readonly secretFile: string;
  readonly ttlSeconds: number;
  /** A get or put not answered in this many ms gives up (--cache-redis-timeout, default 50). */
  readonly timeoutMs: number;
}

export interface ObjectCacheConfig {
  readonly dir: string;
  /** 0: no disk tier (a Redis tier alone may still serve). */
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  readonly redis?: RedisCacheConfig;
}

export interface OpenOptions {
  /** Started as root: the directory is given to this account. */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** False in a process per connection (--inetd): the store is not listed at start. */
  readonly measure?: boolean;
}

function readSecret(file: string): Buffer {
  let secret: Buffer;
  try {
    secret = fs.readFileSync(file);
  } catch (error) {
    throw new DistkitError('bad-cache-secret', `cannot read --cache-secret-file ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): make it readable by the daemon`, { exitCode: EXIT.BAD_ARGUMENTS });
  }
  // A trailing newline from `echo secret > file` is not part of the secret.
  const text = secret.toString('latin1').replace(/\r?\n$/, '');
  if (text.length < 16) throw new DistkitError('bad-cache-secret', `--cache-secret-file ${file} holds ${text.length} bytes: give at least 16 (e.g. head -c 32 /dev/urandom | base64)`, { exitCode: EXIT.BAD_ARGUMENTS });
  return Buffer.from(text, 'latin1');
}

/** The daemon's object cache, or undefined when no tier could be opened. */
export async function openObjectCache(config: ObjectCacheConfig, log: Logger, options: OpenOptions = {}): Promise<ObjectCache | undefined> {
  const tiers: ObjectTier[] = [];
  let memoDir: string | undefined;
  if (config.maxBytes > 0) {
    try {
      const disk = await DiskStore.open({ dir: config.dir, maxBytes: config.maxBytes, maxEntryBytes: config.maxEntryBytes, validate: isIntactEntry, owner: options.owner, measure: options.measure }, log);
      tiers.push(disk);
      memoDir = disk.memoDir;
      log.notice('object cache disk', { dir: config.dir, entries: options.measure === false ? 'unmeasured' : disk.entries, bytes: options.measure === false ? 'unmeasured' : disk.stats.bytes, max: config.maxBytes, 'max-entry': config.maxEntryBytes });
    } catch (error) {
      log.warning('object cache disk unavailable: serving without it', { dir: config.dir, reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message });
    }
  }
  if (config.redis !== undefined) {
    const { urls, passwordFile, secretFile, ttlSeconds, timeoutMs } = config.redis;
    const secret = readSecret(secretFile);
    // Required here: the Redis client library is loaded only by a daemon that uses Redis.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { createRedisTier } = require('./redis_tier') as typeof import('./redis_tier');
    tiers.push(createRedisTier({ urls, passwordFile, secret, ttlSeconds, maxValueBytes: config.maxEntryBytes, timeoutMs, prefix: REDIS_PREFIX }, log));
    log.notice('object cache redis', { nodes: urls.length, ttl: ttlSeconds, 'timeout-ms': timeoutMs });
  }
  if (tiers.length === 0) {
    log.notice('object cache off: no tier could be opened');
    return undefined;
  }
  return new ObjectCache(tiers, { log, maxEntryBytes: config.maxEntryBytes, memoDir });
}
