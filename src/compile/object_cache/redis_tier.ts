// The farm's shared tier of the object cache, on Redis (issue 16). Anyone who can write to the
// Redis could otherwise poison every object of the farm, so each value is wrapped with an
// HMAC-SHA256 under the farm secret, over the entry format version, the key and the bytes: an
// entry written by someone without the secret, moved to another key, or damaged is a miss, logged
// and counted as an error, never served. A slow, dead or full Redis never fails or delays a job
// beyond options.timeoutMs: get and put give up then (TIER_FAILED, a failure counted) and never
// reject; the outage is logged once (src/redis/outage_log) and the tier comes back with Redis.
//
// Stored value: MAGIC (4) ‖ HMAC-SHA256 (32) ‖ the cache's encoded entry.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../log/index';
import { RedisConnection } from '../../redis/redis_connection';
import { TIER_FAILED, type ObjectTier, type ObjectTierStats, type RedisTierOptions } from './object_store';

/** "DKO" and the entry format version: a change of layout or of what the MAC covers bumps it. */
const MAGIC = Buffer.from([0x44, 0x4b, 0x4f, 0x01]);
const MAC_BYTES = 32;
const HEADER_BYTES = MAGIC.length + MAC_BYTES;
/** Domain separation: this secret may key other MACs one day. */
const MAC_CONTEXT = Buffer.from('distkit object cache entry\0');

/** HMAC over the format version, the key and the payload. */
function macOf(secret: Buffer, key: string, payload: Buffer): Buffer {
  return createHmac('sha256', secret).update(MAC_CONTEXT).update(MAGIC).update(key).update('\0').update(payload).digest();
}

/** The stored form of `payload` under `key`. */
export function wrapEntry(secret: Buffer, key: string, payload: Buffer): Buffer {
  return Buffer.concat([MAGIC, macOf(secret, key, payload), payload]);
}

/** The payload of a stored value, or why it must not be served. */
export function unwrapEntry(secret: Buffer, key: string, stored: Buffer): Buffer | { readonly bad: string } {
  if (stored.length < HEADER_BYTES) return { bad: `${stored.length} bytes, shorter than the ${HEADER_BYTES}-byte header` };
  if (!stored.subarray(0, MAGIC.length).equals(MAGIC)) return { bad: 'not an entry of this format version' };
  const payload = stored.subarray(HEADER_BYTES);
  const mac = stored.subarray(MAGIC.length, HEADER_BYTES);
  if (!timingSafeEqual(mac, macOf(secret, key, payload))) return { bad: 'HMAC mismatch (written without the farm secret, or damaged)' };
  return payload;
}

class RedisTier implements ObjectTier {
  readonly name = 'redis';
  readonly #options: RedisTierOptions;
  readonly #log: Logger;
  readonly #redis: RedisConnection;
  #hits = 0;
  #misses = 0;
  #stores = 0;
  #errors = 0;

  constructor(options: RedisTierOptions, log: Logger) {
    this.#options = options;
    this.#log = log.child({ tier: 'redis' });
    this.#redis = new RedisConnection(options.urls, {
      requestTimeoutMs: options.timeoutMs,
      log: this.#log,
      ...(options.passwordFile === undefined ? {} : { passwordFile: options.passwordFile }),
    });
  }

  get stats(): ObjectTierStats {
    return { hits: this.#hits, misses: this.#misses, stores: this.#stores, errors: this.#errors };
  }

  async get(key: string): Promise<Buffer | undefined | typeof TIER_FAILED> {
    let stored: Buffer | null;
    try {
      stored = await this.#redis.run((c) => c.getBuffer(this.#options.prefix + key));
    } catch {
      this.#errors++;
      return TIER_FAILED;
    }
    if (stored === null) {
      this.#misses++;
      return undefined;
    }
    const payload = unwrapEntry(this.#options.secret, key, stored);
    if (!Buffer.isBuffer(payload)) {
      this.#errors++;
      this.#log.warning('bad entry', { key, reason: payload.bad, action: 'miss' });
      return undefined;
    }
    this.#hits++;
    return payload;
  }

  async put(key: string, value: Buffer): Promise<void> {
    if (value.length + HEADER_BYTES > this.#options.maxValueBytes) {
      this.#log.debug('not stored', { key, bytes: value.length, max: this.#options.maxValueBytes });
      return;
    }
    const stored = wrapEntry(this.#options.secret, key, value);
    try {
      await this.#redis.run((c) => c.set(this.#options.prefix + key, stored, 'EX', this.#options.ttlSeconds));
      this.#stores++;
    } catch {
      this.#errors++;
    }
  }

  close(): Promise<void> {
    return this.#redis.close();
  }
}

/** The Redis tier; the URLs and password file are read now (UsageError if wrong), Redis is reached in the background. */
export function createRedisTier(options: RedisTierOptions, log: Logger): ObjectTier {
  return new RedisTier(options, log);
}
