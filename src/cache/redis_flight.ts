// One request of dc_server's Redis batches (./redis_batch) and the flight it belongs to: the
// requests of one batch from the first request to the last answer, with the batch's one deadline
// (a timer per request cost more than the request) and the outage log told once per batch, not
// once per request. A request is settled by a call (its reply from ioredis's queue entry, or from
// a native link's event: ../redis/pumped_link), never through a promise; on a cluster a request
// its master refuses with a redirect, or loses with its connection, goes again through the
// cluster client, which follows it (sendRouted).

import { Cluster } from 'ioredis';
import { clusterReroutes } from '../redis/cluster_masters';
import type { Argument } from '../redis/encoded_commands';
import { REPLY_STATUS, REPLY_VALUE, type LinkWaiter, type PumpedLink } from '../redis/pumped_link';
import type { RedisConnection } from '../redis/redis_connection';
import { PendingPayload, status } from './engine';
import { Operation, Status } from './wire/index';

/** What a flight tells the batch that made it. */
export interface FlightOwner {
  /** A reply settled a request. */
  replied(): void;
  /** A request failed. */
  failedOperation(operation: Operation): void;
}

/** One request: its key (prefix + session id; not made when it goes on the native link), and for
 * an ADD the data and its lifetime; its response payload is delivered once Redis answers. */
export class Request extends PendingPayload implements LinkWaiter {
  readonly operation: Operation;
  key: Buffer | undefined;
  data: Buffer | undefined;
  readonly px: number;
  readonly flight: Flight;
  /** The native link it went on, if it did. */
  link: PumpedLink | undefined;

  constructor(operation: Operation, px: number, flight: Flight) {
    super();
    this.operation = operation;
    this.px = px;
    this.flight = flight;
  }

  replied(kind: number, arena: Buffer, offset: number, length: number): void {
    if (kind === REPLY_STATUS) return this.flight.answer(this, status(length as Status));
    if (kind === REPLY_VALUE) {
      const value = Buffer.allocUnsafe(length);
      arena.copy(value, 0, offset, offset + length);
      return this.flight.answer(this, value);
    }
    this.flight.refused(this, new Error(arena.toString('latin1', offset, offset + length)));
  }

  lost(error: Error): void {
    this.flight.refused(this, error, true);
  }
}

/** Redis wants a positive PX; an ADD with timeout 0 lives for at most a millisecond in memory too. */
export function pxOf(timeoutMs: number): number {
  return Math.max(1, timeoutMs);
}

/** The command of one request: name and arguments (encoded by us, or by the cluster client). */
export function commandOf(request: Request): [string, Argument[]] {
  switch (request.operation) {
    case Operation.ADD:
      return ['set', [request.key!, request.data!, 'PX', String(request.px), 'NX']];
    case Operation.GET:
      return ['get', [request.key!]];
    case Operation.REMOVE:
      return ['del', [request.key!]];
    case Operation.HAVE:
      return ['exists', [request.key!]];
  }
}

/** The response payload of a request whose command returned `reply`, strings as Buffers (SET NX
 * answers OK, or nil when the key was there). */
export function payloadOf(operation: Operation, reply: unknown): Buffer {
  switch (operation) {
    case Operation.ADD:
      return status(reply === null ? Status.ADD_MATCHING_SESSION : Status.OK);
    case Operation.GET:
      return (reply as Buffer | null) ?? status(Status.NOTOK);
    case Operation.REMOVE:
    case Operation.HAVE:
      return status((reply as number) > 0 ? Status.OK : Status.NOTOK);
  }
}

/** The response payload of a lookup (GET or HAVE) answered by an MGET value. */
export function lookupPayloadOf(operation: Operation, value: Buffer | null | undefined): Buffer {
  if (operation === Operation.GET) return value ?? status(Status.NOTOK);
  return status(value === null || value === undefined ? Status.NOTOK : Status.OK);
}

/** The requests of one batch, from the first request to the last answer: its deadline, and the
 * outage log told once. */
export class Flight {
  readonly requests: Request[] = [];
  /** The native link its requests went on, or undefined (ioredis). Decided by the first one. */
  readonly link: PumpedLink | undefined;
  /** On a cluster: the native links its requests went on, and per master whether they go on
   * its link (decided by the master's first request, so that none of its requests overtakes
   * another on a second connection). */
  readonly links: PumpedLink[] = [];
  #masters: Map<string, PumpedLink | undefined> | undefined;
  readonly #batch: FlightOwner;
  readonly #redis: RedisConnection;
  #left = 0;
  #failure: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(batch: FlightOwner, redis: RedisConnection) {
    this.#batch = batch;
    this.#redis = redis;
    this.link = redis.link;
  }

  add(request: Request): void {
    this.requests.push(request);
    this.#left++;
  }

  /** The native link of the cluster master that owns `key` for this flight, or undefined. */
  masterLink(key: Buffer): PumpedLink | undefined {
    const master = this.#redis.masterOf(key);
    if (master === undefined) return undefined;
    const masters = (this.#masters ??= new Map());
    if (masters.has(master.owner)) return masters.get(master.owner);
    masters.set(master.owner, master.link);
    if (master.link !== undefined) this.links.push(master.link);
    return master.link;
  }

  /** Redis refused a request sent on a native link, or its connection was lost: on a cluster a
   * moved slot, a failover or a lost master goes through the cluster client, which follows it;
   * anything else fails. */
  refused(request: Request, error: Error, lost = false): void {
    if (request.delivered) return;
    if (this.#redis.mode !== 'cluster' || !(lost || clusterReroutes(error))) return this.fail(request, error);
    try {
      this.#redis.sendTogether((client) => (client instanceof Cluster ? sendRouted(client, request, this) : this.fail(request, error)));
    } catch (failure) {
      this.fail(request, failure);
    }
  }

  /** Answers what Redis has not answered within `timeoutMs` with the failure status. */
  arm(timeoutMs: number): void {
    if (this.#left === 0) return;
    this.#timer = setTimeout(() => {
      const late = new Error(`no answer within ${timeoutMs} ms`);
      for (const request of this.requests) if (!request.delivered) this.fail(request, late);
    }, timeoutMs);
  }

  answer(request: Request, payload: Buffer): void {
    if (request.delivered) return;
    try {
      request.deliver(payload);
    } catch (error) {
      // Not into the reply parsing (the other replies of the read would be lost): the same fate
      // as a throw in a promise reaction, an unhandled error.
      queueMicrotask(() => {
        throw error;
      });
    }
    this.#batch.replied();
    if (--this.#left > 0) return;
    clearTimeout(this.#timer);
    if (this.#failure === undefined) this.#redis.outage.succeeded();
  }

  fail(request: Request, error: unknown): void {
    if (request.delivered) return;
    this.#failure ??= error instanceof Error ? error.message : String(error);
    this.#redis.outage.failed(this.#failure);
    this.#batch.failedOperation(request.operation);
    this.answer(request, status(Status.NOTOK));
  }
}

/** Issues one request through the cluster client's routing (its slots, MOVED and ASK, retries). */
export function sendRouted(cluster: Cluster, request: Request, flight: Flight): void {
  let reply: Promise<unknown>;
  try {
    reply = cluster.callBuffer(...commandOf(request));
  } catch (error) {
    flight.fail(request, error);
    return;
  }
  reply.then((value) => flight.answer(request, payloadOf(request.operation, value)), (error: unknown) => flight.fail(request, error));
}
