// The requests of dc_server's Redis engine (./redis_engine), gathered per turn of the event loop
// and sent to Redis together. Requests arrive one 'data' event at a time, one connection after the
// other; a request sent at once would cost one write to Redis (a syscall, and a wake-up of the
// redis-server) per request. Gathered until the loop's check phase (setImmediate: after every
// socket that was readable in this turn has been read), they leave in one write per Redis node
// (RedisConnection.sendTogether corks the node sockets), and the replies come back in a few reads.
//
// Each request is still its own command (SET key data PX ttl NX, GET, EXISTS, DEL), except that a
// run of lookups (GET and HAVE) on a standalone Redis is one MGET (a HAVE is answered by whether
// its value is there: the sessions are strings, so that is EXISTS's answer), sent in request
// order: Redis answers one connection's commands in order. The commands are encoded by us, a
// batch's in one buffer (../redis/encoded_commands): ioredis's own encoding and a promise per
// command cost more than the rest of the request. On a cluster each master gets its part of the
// batch on its own connection (../redis/cluster_masters), each request its own command (the keys
// of one command must share a slot); a request the master sends elsewhere (MOVED, ASK, a
// failover) goes again through the cluster client, which follows it, so a failover costs the
// requests of the moved slots, not the whole batch.
//
// A turn that handled Redis replies answered clients, who send their next requests while we are
// still busy: the batch of such a turn waits one more turn for them (a non-blocking poll later),
// so that one write, one wake-up of the redis-server and one read serve more of them (8 -> 10 per
// batch at 16 clients on the bench; holding a batch until as many requests as the last round had
// came back made one of 16 per round trip, but cost more CPU per request, not less: we and the
// redis-server then sleep while the clients answer, and every wake-up costs). A turn without
// replies (one client, the first requests) sends at once.
//
// Without TLS the batch takes the native pipelines when they are up (../redis/pumped_link:
// commands encoded and replies parsed in C, on the socket pump): a standalone Redis's one link, or
// on a cluster the link of the master that owns each key (no MGET there). Each request is copied
// into its link's command area as it comes, each link's part of the batch leaves in one send() at
// the end of the turn, and each reply settles its request from the pump's callback. A batch that
// began on ioredis (the link was down) stays there, as does, within a batch, each master's part,
// so one client's requests never race each other on two connections. On a cluster a request a
// master refuses with a redirect (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) or loses with its connection
// goes through the cluster client, as on the ioredis path.
//
// One deadline per batch (./redis_flight): what Redis has not answered within timeoutMs is
// answered 0x01 (DC_ERR_NOTOK).

import { Cluster, type Redis } from 'ioredis';
import { clusterReroutes, mastersOf } from '../redis/cluster_masters';
import { EncodedBatch } from '../redis/encoded_commands';
import type { RedisClient, RedisConnection } from '../redis/redis_connection';
import type { PendingPayload } from './engine';
import { commandOf, Flight, lookupPayloadOf, payloadOf, pxOf, Request, sendRouted, type FlightOwner } from './redis_flight';
import { Operation } from './wire/index';

const isLookup = (operation: Operation): boolean => operation === Operation.GET || operation === Operation.HAVE;

export class RedisBatch implements FlightOwner {
  readonly #redis: RedisConnection;
  readonly #timeoutMs: number;
  readonly #prefix: Buffer;
  readonly #failed: ((operation: Operation) => void) | undefined;
  #pending: Flight | undefined;
  /** #endOfTurn is queued for this turn's (or the next turn's) check phase. */
  #scheduled = false;
  /** Replies were handled since the last check phase (so clients were answered in this turn). */
  #replied = false;
  /** The pending batch already waited one turn. */
  #waited = false;

  /** Requests on `redis` (made with `batched: true`) for keys under `prefix`, not answered within
   * `timeoutMs`, fail; `failed` is told the operation of each request that fails (the metrics'
   * errors by command). A standalone Redis gets the native link (see the top). */
  constructor(redis: RedisConnection, timeoutMs: number, prefix: Buffer, failed?: (operation: Operation) => void) {
    this.#redis = redis;
    this.#timeoutMs = timeoutMs;
    this.#prefix = prefix;
    this.#failed = failed;
    redis.openLink(prefix);
  }

  /** The response payload of one request on session `id`, delivered once Redis answers; 0x01 when
   * it fails or is late. `data` and `timeoutMs` are an ADD's. `id` and `data` may be views of a
   * buffer reused once this returns: they are copied. */
  request(operation: Operation, id: Buffer, data?: Buffer, timeoutMs = 0): PendingPayload {
    const flight = (this.#pending ??= new Flight(this, this.#redis));
    const request = new Request(operation, pxOf(timeoutMs), flight);
    flight.add(request);
    const link = flight.link;
    if (link !== undefined && link.add(operation, id, data, request.px, request)) {
      request.link = link;
    } else {
      // Kept for the ioredis path, and on a cluster for a request its master sends elsewhere.
      request.key = Buffer.concat([this.#prefix, id]);
      if (data !== undefined) request.data = Buffer.from(data);
      const master = link === undefined ? flight.masterLink(request.key) : undefined;
      if (master !== undefined && master.add(operation, id, data, request.px, request)) request.link = master;
    }
    this.#schedule();
    return request;
  }

  /** A reply settled a request (the Flight's call). */
  replied(): void {
    if (this.#replied) return;
    this.#replied = true;
    this.#schedule();
  }

  /** A request failed (the Flight's call). */
  failedOperation(operation: Operation): void {
    this.#failed?.(operation);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#endOfTurn);
  }

  /** The check phase of a turn that queued requests or handled replies: sends the batch, or
   * lets it wait one turn for the requests of the clients this turn answered. */
  readonly #endOfTurn = (): void => {
    this.#scheduled = false;
    const replied = this.#replied;
    this.#replied = false;
    if (this.#pending === undefined) return;
    if (replied && !this.#waited) {
      this.#waited = true;
      this.#schedule();
      return;
    }
    this.#waited = false;
    this.#flush();
  };

  #flush(): void {
    const flight = this.#pending!;
    this.#pending = undefined;
    flight.arm(this.#timeoutMs);
    // What went on the native links (all of it, or none but what a link refused while down).
    flight.link?.send();
    for (const link of flight.links) link.send();
    const rest = flight.link === undefined && flight.links.length === 0 ? flight.requests : flight.requests.filter((r) => r.link === undefined);
    if (rest.length === 0) return;
    try {
      this.#redis.sendTogether((client) => this.#send(client, rest, flight));
    } catch (error) {
      // Nothing of a Redis failure may escape into the event loop (it would end the process).
      for (const request of rest) if (!request.delivered) flight.fail(request, error);
    }
  }

  /** Issues the commands of `batch` in order: each request its own command, but a run of lookups
   * is one MGET on a standalone Redis (a command costs ioredis about as much as our whole answer;
   * not in a cluster, where the keys of one command must share a slot, and each command is routed
   * by its key). */
  #send(client: RedisClient, batch: readonly Request[], flight: Flight): void {
    if (client instanceof Cluster) return sendByMaster(client, batch, flight);
    const encoded = new EncodedBatch();
    for (let i = 0; i < batch.length; ) {
      const request = batch[i]!;
      let run = 1;
      if (isLookup(request.operation)) while (i + run < batch.length && isLookup(batch[i + run]!.operation)) run++;
      if (run === 1) {
        i++;
        encoded.add(...commandOf(request), {
          reply: (value) => flight.answer(request, payloadOf(request.operation, value)),
          error: (error) => flight.fail(request, error),
        });
        continue;
      }
      const lookups = batch.slice(i, i + run);
      i += run;
      encoded.add('mget', lookups.map((r) => r.key!), {
        reply: (values) => lookups.forEach((r, k) => flight.answer(r, lookupPayloadOf(r.operation, (values as (Buffer | null)[])[k]))),
        error: (error) => lookups.forEach((r) => flight.fail(r, error)),
      });
    }
    encoded.send(client);
  }
}

/** Issues the requests of `batch` on a cluster: each master its part as one encoded buffer on its
 * own connection, each request its own command; a request whose master is not known or not
 * connected, or that the master sends elsewhere (MOVED, ASK, a failover), goes through the
 * cluster client, which follows it. */
function sendByMaster(cluster: Cluster, batch: readonly Request[], flight: Flight): void {
  const masterOf = mastersOf(cluster);
  const parts = new Map<Redis, EncodedBatch>();
  for (const request of batch) {
    const master = masterOf(request.key!);
    if (master === undefined) {
      sendRouted(cluster, request, flight);
      continue;
    }
    let part = parts.get(master);
    if (part === undefined) parts.set(master, (part = new EncodedBatch()));
    part.add(...commandOf(request), {
      reply: (value) => flight.answer(request, payloadOf(request.operation, value)),
      error: (error) => (clusterReroutes(error) ? sendRouted(cluster, request, flight) : flight.fail(request, error)),
    });
  }
  for (const [master, part] of parts) part.send(master);
}
