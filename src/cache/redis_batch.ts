// The requests of dc_server's Redis engine (./redis_engine), gathered per turn of the event loop
// and sent to Redis together. Requests arrive one 'data' event at a time, one connection after the
// other; a request sent at once would cost one write to Redis (a syscall, and a wake-up of the
// redis-server) per request. Gathered until the loop's check phase (setImmediate: after every
// socket that was readable in this turn has been read), they leave in one write per Redis node
// (RedisConnection.sendTogether corks the node sockets), and the replies come back in a few reads.
//
// Each request is still its own command (SET key data PX ttl NX, GET, EXISTS, DEL; only a run of
// GETs on a standalone Redis is one MGET), sent in request order: Redis answers one connection's
// commands in order, and a cluster client routes each command to its slot's node and follows
// MOVED/ASK for it alone, so a failover costs the requests of the moved slots, not the whole batch.
//
// One deadline per batch, not per request (a timer per request cost more than the request): what
// Redis has not answered within timeoutMs is answered 0x01 (DC_ERR_NOTOK), and the outage log is
// told once per batch, not once per request.

import { Cluster } from 'ioredis';
import type { RedisClient, RedisConnection } from '../redis/redis_connection';
import { status } from './engine';
import { Operation, Status } from './wire/index';

/** One request: its key (prefix + session id), and for an ADD the data and its lifetime. */
interface Request {
  readonly operation: Operation;
  readonly key: Buffer;
  readonly data: Buffer | undefined;
  readonly px: number;
  readonly resolve: (payload: Buffer) => void;
  answered: boolean;
}

/** Redis wants a positive PX; an ADD with timeout 0 lives for at most a millisecond in memory too. */
function pxOf(timeoutMs: number): number {
  return Math.max(1, timeoutMs);
}

/** Issues the command of one request (does not wait for it). */
function send(client: RedisClient, request: Request): Promise<unknown> {
  switch (request.operation) {
    case Operation.ADD:
      return client.set(request.key, request.data!, 'PX', request.px, 'NX');
    case Operation.GET:
      return client.getBuffer(request.key);
    case Operation.REMOVE:
      return client.del(request.key);
    case Operation.HAVE:
      return client.exists(request.key);
  }
}

/** The response payload of a request whose command returned `reply`. */
function payloadOf(operation: Operation, reply: unknown): Buffer {
  switch (operation) {
    case Operation.ADD:
      return status(reply === 'OK' ? Status.OK : Status.ADD_MATCHING_SESSION);
    case Operation.GET:
      return (reply as Buffer | null) ?? status(Status.NOTOK);
    case Operation.REMOVE:
    case Operation.HAVE:
      return status((reply as number) > 0 ? Status.OK : Status.NOTOK);
  }
}

export class RedisBatch {
  readonly #redis: RedisConnection;
  readonly #timeoutMs: number;
  readonly #failed: ((operation: Operation) => void) | undefined;
  #pending: Request[] = [];
  #scheduled = false;

  /** Requests on `redis` (made with `batched: true`) not answered within `timeoutMs` fail;
   * `failed` is told the operation of each request that fails (the metrics' errors by command). */
  constructor(redis: RedisConnection, timeoutMs: number, failed?: (operation: Operation) => void) {
    this.#redis = redis;
    this.#timeoutMs = timeoutMs;
    this.#failed = failed;
  }

  /** The response payload of one request, once Redis answers; 0x01 when it fails or is late.
   * Never rejects. `data` and `timeoutMs` are an ADD's; `key` and `data` must be the caller's
   * own copies (they are sent in a later phase of the loop). */
  request(operation: Operation, key: Buffer, data?: Buffer, timeoutMs = 0): Promise<Buffer> {
    return new Promise((resolve) => {
      this.#pending.push({ operation, key, data, px: pxOf(timeoutMs), resolve, answered: false });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    const outage = this.#redis.outage;
    let left = batch.length;
    let failure: string | undefined;
    const answer = (request: Request, payload: Buffer): void => {
      if (request.answered) return;
      request.answered = true;
      request.resolve(payload);
      if (--left > 0) return;
      clearTimeout(timer);
      if (failure === undefined) outage.succeeded();
    };
    const fail = (request: Request, error: unknown): void => {
      if (request.answered) return;
      failure ??= error instanceof Error ? error.message : String(error);
      outage.failed(failure);
      this.#failed?.(request.operation);
      answer(request, status(Status.NOTOK));
    };
    const timer = setTimeout(() => {
      const late = `no answer within ${this.#timeoutMs} ms`;
      for (const request of batch) if (!request.answered) fail(request, new Error(late));
    }, this.#timeoutMs);
    try {
      this.#redis.sendTogether((client) => this.#send(client, batch, answer, fail));
    } catch (error) {
      // Nothing of a Redis failure may escape into the event loop (it would end the process).
      for (const request of batch) if (!request.answered) fail(request, error);
    }
  };

  /** Issues the commands of `batch` in order: each request its own command, but a run of GETs is
   * one MGET on a standalone Redis (a command costs ioredis about as much as our whole answer;
   * not in a cluster, where the keys of one command must share a slot). */
  #send(client: RedisClient, batch: readonly Request[], answer: (request: Request, payload: Buffer) => void, fail: (request: Request, error: unknown) => void): void {
    const multiKey = !(client instanceof Cluster);
    for (let i = 0; i < batch.length; ) {
      const request = batch[i]!;
      let run = 1;
      if (multiKey && request.operation === Operation.GET) while (i + run < batch.length && batch[i + run]!.operation === Operation.GET) run++;
      if (run === 1) {
        i++;
        let reply: Promise<unknown>;
        try {
          reply = send(client, request);
        } catch (error) {
          fail(request, error);
          continue;
        }
        reply.then((value) => answer(request, payloadOf(request.operation, value)), (error: unknown) => fail(request, error));
        continue;
      }
      const gets = batch.slice(i, i + run);
      i += run;
      let replies: Promise<(Buffer | null)[]>;
      try {
        replies = client.mgetBuffer(gets.map((r) => r.key));
      } catch (error) {
        for (const r of gets) fail(r, error);
        continue;
      }
      replies.then(
        (values) => gets.forEach((r, k) => answer(r, payloadOf(Operation.GET, values[k]))),
        (error: unknown) => gets.forEach((r) => fail(r, error)),
      );
    }
  }
}
