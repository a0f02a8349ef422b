// The distcache engine on Redis (issue 18): dc_server as a stateless protocol front end of a Redis
// shared by a fleet. Each request becomes one command under the key prefix: ADD -> SET key data
// PX timeout NX (a duplicate keeps the old session and gets 0x65, as in memory), GET -> GET,
// HAVE -> EXISTS, REMOVE -> DEL. Payloads come later (a promise; the engine answers { kind: 'later' }); the connection
// (./session) writes them in request order, so pipelining keeps its order. Expiry is Redis's own
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
import { decodeAddPayload, Operation, Status, type Message } from './wire/index';

export interface RedisEngineOptions {
  readonly redis: RedisConnection;
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

/** Redis wants a positive PX; an ADD with timeout 0 lives for at most a millisecond in memory too. */
function pxOf(timeoutMs: number): number {
  return Math.max(1, timeoutMs);
}

/** The response payload Redis gives one well-formed request; rejects when Redis fails. */
async function payloadFrom(redis: RedisConnection, key: Buffer, message: Message, add?: { data: Buffer; timeoutMs: number }): Promise<Buffer> {
  switch (message.operation) {
    case Operation.ADD: {
      const { data, timeoutMs } = add!;
      const set = await redis.run((c) => c.set(key, data, 'PX', pxOf(timeoutMs), 'NX'));
      return status(set === 'OK' ? Status.OK : Status.ADD_MATCHING_SESSION);
    }
    case Operation.GET:
      return (await redis.run((c) => c.getBuffer(key))) ?? status(Status.NOTOK);
    case Operation.REMOVE:
      return status((await redis.run((c) => c.del(key))) > 0 ? Status.OK : Status.NOTOK);
    case Operation.HAVE:
      return status((await redis.run((c) => c.exists(key))) > 0 ? Status.OK : Status.NOTOK);
  }
}

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
  const prefix = Buffer.from(options.prefix);
  let sessions = 0;
  let sizeAskedAt = -Infinity;

  const payloadOf = (message: Message): Payload => {
    let add: { data: Buffer; timeoutMs: number } | undefined;
    let id = message.payload;
    if (message.operation === Operation.ADD) {
      const decoded = decodeAddPayload(message.payload);
      if (decoded.kind === 'short') return { reason: `ADD payload of ${decoded.length} bytes is shorter than 8` };
      if (decoded.kind === 'rejected') return status(decoded.status);
      id = decoded.value.id;
      // Copies: the payload is a view of the connection's read buffer, reused once we return.
      add = { data: Buffer.from(decoded.value.data), timeoutMs: decoded.value.timeoutMs };
    }
    const key = Buffer.concat([prefix, id]);
    return payloadFrom(redis, key, message, add).catch(() => {
      options.failed?.(message.operation);
      return status(Status.NOTOK);
    });
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
