// The distcache engine on Redis (issue 18): dc_server as a stateless protocol front end of a Redis
// shared by a fleet. Each request becomes one command under the key prefix: ADD -> SET key data
// PX timeout NX (a duplicate keeps the old session and gets 0x65, as in memory), GET -> GET,
// HAVE -> EXISTS, REMOVE -> DEL, gathered per turn of the event loop and sent together
// (./redis_batch). Payloads come later (a PendingPayload; the engine answers { kind: 'later' }); the
// connection (./session) writes them in request order, so pipelining keeps its order. Expiry is Redis's own
// (strict, as ours); eviction is Redis's maxmemory-policy (volatile-ttl: soonest expiry first, as
// the C server). Requests the codec refuses are answered at once, exactly as in memory.
//
// Redis unreachable, slow past the deadline or refusing (OOM): the request gets the protocol's
// failure status, 0x01 (DC_ERR_NOTOK: a failed lookup, or a failed add), at once; the outage is
// logged once (src/redis/outage_log) and the connection reconnects in the background. A client
// is never left waiting past the deadline and nothing of an outage can crash the server.

import type { Logger } from '../log/index';
import type { RedisConnection } from '../redis/redis_connection';
import { assembleEngine, defaultClock, status, type CacheEngine, type CacheEngineOptions, type Payload } from './engine';
import { RedisBatch } from './redis_batch';
import { decodeAddPayload, Operation, type Message } from './wire/index';

export interface RedisEngineOptions {
  /** Made with `batched: true` (requests go through ./redis_batch). */
  readonly redis: RedisConnection;
  /** A request Redis has not answered within this many ms is answered 0x01. */
  readonly requestTimeoutMs: number;
  /** Prepended to every session id to make its key. */
  readonly prefix: string;
  readonly idleMs?: number;
  readonly afterAnswer?: CacheEngineOptions['afterAnswer'];
  /** Told the operation of each request Redis failed (the metrics' errors by command). */
  readonly failed?: (operation: Operation) => void;
  readonly log: Logger;
}

/** How often stats.sessions asks Redis for its key count at most (ms). */
const SIZE_REFRESH_MS = 1000;

/** Keys in the Redis (every master of a cluster), for the statistics line. */
async function countKeys(redis: RedisConnection): Promise<number> {
  return redis.run(async (c) => {
    if ('nodes' in c) {
      const sizes = await Promise.all(c.nodes('master').map((node) => node.dbsize()));
      return sizes.reduce((a, b) => a + b, 0);
    }
    return c.dbsize();
  });
}

export function createRedisEngine(options: RedisEngineOptions): CacheEngine {
  const { redis } = options;
  const batch = new RedisBatch(redis, options.requestTimeoutMs, Buffer.from(options.prefix), options.failed);
  let sessions = 0;
  let sizeAskedAt = -Infinity;

  const payloadOf = (message: Message): Payload => {
    if (message.operation !== Operation.ADD) return batch.request(message.operation, message.payload);
    const decoded = decodeAddPayload(message.payload);
    if (decoded.kind === 'short') return { reason: `ADD payload of ${decoded.length} bytes is shorter than 8` };
    if (decoded.kind === 'rejected') return status(decoded.status);
    const { id, data, timeoutMs } = decoded.value;
    // Views of the connection's read buffer: the batch copies them.
    return batch.request(Operation.ADD, id, data, timeoutMs);
  };

  /** The last key count Redis gave (asked again at most once a second): shared, and expired by Redis. */
  const sessionsNow = (): number => {
    const now = defaultClock();
    if (now - sizeAskedAt >= SIZE_REFRESH_MS) {
      sizeAskedAt = now;
      countKeys(redis).then((n) => (sessions = n), () => undefined);
    }
    return sessions;
  };

  return assembleEngine({ payload: payloadOf, sessions: sessionsNow, close: () => redis.close() }, options);
}
