// One connection to a Redis, standalone or a Redis Cluster, as both Redis users want it (the
// object cache's tier and dc_server's store): built from URLs and a password file, with short
// timeouts and no unbounded offline queue, so a request during an outage fails at once instead of
// waiting for a Redis that may never come back; ioredis reconnects in the background. Every
// request goes through run(), which bounds it with a deadline of its own (a cluster's redirections
// and slot refreshes can otherwise add up to seconds) and reports it to the outage log.
//
// One URL is a standalone Redis unless the node says it runs in cluster mode (INFO cluster), in
// which case it becomes the seed of a Cluster client; several URLs are a cluster's seeds.
//
// dc_server's batches also get native pipelines on the socket pump (./pumped_link, openLink): one
// for a standalone Redis, one per cluster master, each on a connection of its own that ioredis
// makes and this file keeps until close.

import fs from 'node:fs';
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import { UsageError } from '../errors';
import type { Logger } from '../log/index';
import { slotOwner } from './cluster_masters';
import { OutageLog } from './outage_log';
import { PumpedLink } from './pumped_link';
import { parseRedisUrl, type RedisEndpoint } from './redis_url';

export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /** A file holding the password (first line); undefined = none. */
  readonly passwordFile?: string;
  /** A request not answered within this many ms fails. */
  readonly requestTimeoutMs: number;
  /** A connection attempt gives up after this many ms (default: 1000). */
  readonly connectTimeoutMs?: number;
  /**
   * The caller gathers its requests itself and sends them with sendTogether(), bounding each
   * gathering with one deadline of its own (dc_server: src/cache/redis_batch): no auto-pipelining
   * (its cluster grouping reads a Buffer key as UTF-8, so binary keys of different nodes land in
   * one pipeline, which the cluster client then refuses whole) and no timer per command.
   * run() keeps its deadline either way. Default: false.
   */
  readonly batched?: boolean;
  readonly log: Logger;
}

/** Reconnection back-off: 50 ms, 100 ms, ... up to 1 s between attempts, forever. */
function backoff(times: number): number {
  return Math.min(50 * times, 1000);
}

/** The password in `file` (its first line), or a UsageError naming the file. */
export function readPasswordFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`Cannot read the Redis password file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '') throw new UsageError(`The Redis password file ${file} is empty: write the password on its first line`);
  return password;
}

function nodeOptions(endpoint: RedisEndpoint, password: string | undefined, options: RedisConnectionOptions): RedisOptions {
  return {
    ...(endpoint.path === undefined ? { host: endpoint.host!, port: endpoint.port! } : { path: endpoint.path }),
    ...(endpoint.tls ? { tls: { servername: endpoint.host! } } : {}),
    ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
    ...(password === undefined ? {} : { password }),
    db: endpoint.db,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    ...(options.batched === true ? {} : { commandTimeout: options.requestTimeoutMs }),
    // Fail, never queue: a request made while the connection is down is answered at once.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Never write a request again on a new connection: what was in flight at a loss has been
    // answered as failed already, and a batch's commands (encoded_commands.ts) are queued entries
    // without bytes of their own, so nothing could be written again for them.
    autoResendUnfulfilledCommands: false,
    retryStrategy: backoff,
    lazyConnect: false,
    // Requests made in the same tick (the connections of a busy front end) leave in one write.
    enableAutoPipelining: options.batched !== true,
  };
}

/** Events that end a client's first connection attempt, well or badly. */
const FIRST_ATTEMPT_ENDS = ['ready', 'error', 'node error', 'close', 'end'] as const;

export class RedisConnection {
  readonly outage: OutageLog;
  readonly #log: Logger;
  readonly #options: RedisConnectionOptions;
  readonly #password: string | undefined;
  readonly #endpoints: readonly RedisEndpoint[];
  #client: RedisClient;
  #closed = false;
  #firstAttemptOver = false;
  /** Resolves when the first connection attempt is over: ready, or failed (requests then fail fast). */
  readonly #firstAttempt: Promise<void>;
  /** Settles once a single URL's node has said whether it is a cluster node. */
  #detected: Promise<void> = Promise.resolve();
  /** The native pipeline of a standalone Redis (see openLink). */
  #link: PumpedLink | undefined;
  /** The key prefix of the native pipelines, once openLink was called. */
  #prefix: Buffer | undefined;
  /** A cluster's native pipelines by master ("host:port"; undefined: the pump cannot serve it). */
  readonly #masterLinks = new Map<string, PumpedLink | undefined>();

  /** Parses the URLs and reads the password file now (UsageError if either is wrong); connects in the background. */
  constructor(urls: readonly string[], options: RedisConnectionOptions) {
    if (urls.length === 0) throw new UsageError('No Redis URL given');
    this.#endpoints = urls.map(parseRedisUrl);
    this.#options = options;
    this.#log = options.log;
    this.#password = options.passwordFile === undefined ? undefined : readPasswordFile(options.passwordFile);
    this.outage = new OutageLog(options.log, urls.join(','));
    this.#client = this.#endpoints.length > 1 ? this.#cluster() : this.#standalone(this.#endpoints[0]!);
    const client = this.#client;
    this.#firstAttempt = new Promise((resolve) => {
      const over = (): void => {
        this.#firstAttemptOver = true;
        for (const event of FIRST_ATTEMPT_ENDS) client.off(event, over);
        resolve();
      };
      for (const event of FIRST_ATTEMPT_ENDS) client.on(event, over);
    });
  }

  /** 'cluster' or 'standalone' (a single URL turns into 'cluster' once its node says so). */
  get mode(): 'cluster' | 'standalone' {
    return this.#client instanceof Cluster ? 'cluster' : 'standalone';
  }

  /** Whether the client's connection is ready now (the metrics' dc_server_redis_connected). */
  get connected(): boolean {
    return this.#client.status === 'ready';
  }

  /** Runs one request with the deadline; rejects on failure or timeout, reporting either to the outage log. */
  async run<T>(request: (client: RedisClient) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#options.requestTimeoutMs} ms`)), this.#options.requestTimeoutMs);
    });
    try {
      // The very first requests of a process may come while the first connection is still being
      // made (a process per connection asks at once): they wait for it, within their deadline.
      if (!this.#firstAttemptOver) await Promise.race([this.#firstAttempt, deadline]);
      const value = await Promise.race([request(this.#client), deadline]);
      this.outage.succeeded();
      return value;
    } catch (error) {
      this.outage.failed(error instanceof Error ? error.message : String(error));
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `send`, which issues commands without waiting (each command is a promise), with the
   * socket of every node corked: what it sends leaves in one write per node instead of a write
   * per command, and each command keeps the client's own routing (a cluster's slots, its MOVED
   * and ASK redirections, command by command). No deadline: the caller bounds the replies.
   */
  sendTogether<T>(send: (client: RedisClient) => T): T {
    const client = this.#client;
    const nodes = client instanceof Cluster ? client.nodes('all') : [client];
    const corked: Redis['stream'][] = [];
    for (const node of nodes) {
      // Undefined until the node's first connection is made.
      const stream = node.stream as Redis['stream'] | undefined;
      if (stream?.writable === true) {
        stream.cork();
        corked.push(stream);
      }
    }
    try {
      return send(client);
    } finally {
      for (const stream of corked) stream.uncork();
    }
  }

  /** Opens the native pipeline (./pumped_link) for keys under `prefix` once this is known to be
   * a standalone Redis reached without TLS; link then returns it while it is that. */
  openLink(prefix: Buffer): void {
    this.#prefix = prefix;
    if (this.#endpoints.length > 1) return;
    const endpoint = this.#endpoints[0]!;
    void this.#detected.then(() => {
      if (this.#closed || this.#link !== undefined || this.mode !== 'standalone') return;
      this.#link = PumpedLink.create(nodeOptions(endpoint, this.#password, this.#options), prefix, true, (error) => this.outage.failed(error.message));
    });
  }

  /** The native pipeline while it is connected (see openLink), else undefined. */
  get link(): PumpedLink | undefined {
    const link = this.#link;
    return link !== undefined && link.ready && this.#client instanceof Redis ? link : undefined;
  }

  /** Replies the native pipelines handled since start (for tests: which path requests took). */
  get linkReplies(): number {
    let replies = this.#link?.replies ?? 0;
    for (const link of this.#masterLinks.values()) replies += link?.replies ?? 0;
    return replies;
  }

  /** On a Redis Cluster (after openLink), the master that owns `key`'s slot and its native
   * pipeline if that is connected now (made on first use, one per master, as the standalone one);
   * undefined when this is no cluster or the slot's owner is not known. */
  masterOf(key: Buffer): { readonly owner: string; readonly link: PumpedLink | undefined } | undefined {
    const client = this.#client;
    if (!(client instanceof Cluster) || this.#prefix === undefined) return undefined;
    const owner = slotOwner(client, key);
    if (owner === undefined) return undefined;
    let link = this.#masterLinks.get(owner);
    if (link === undefined && !this.#masterLinks.has(owner)) {
      link = this.#masterLink(owner, this.#prefix);
      this.#masterLinks.set(owner, link);
    }
    return { owner, link: link?.ready === true ? link : undefined };
  }

  #masterLink(owner: string, prefix: Buffer): PumpedLink | undefined {
    const colon = owner.lastIndexOf(':');
    const first = this.#endpoints.find((e) => e.path === undefined);
    if (colon < 0 || first === undefined) return undefined;
    const endpoint: RedisEndpoint = { ...first, host: owner.slice(0, colon), port: Number(owner.slice(colon + 1)), db: 0 };
    // Its connection errors are the cluster client's to report (its node errors): a master gone
    // in a failover would otherwise keep the outage open while its link tries to reconnect.
    return PumpedLink.create(nodeOptions(endpoint, this.#password, this.#options), prefix, false, () => undefined);
  }

  /** Waits until a request succeeds (and a single seed's cluster mode is known), at most `ms`;
   * says whether it did. Servers call it before they listen, so that the first clients are not
   * answered with failures only because the connection was still being made. */
  async waitReady(ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    for (;;) {
      try {
        await this.run((c) => c.ping());
        await this.#detected;
        return true;
      } catch {
        if (performance.now() >= deadline || this.#closed) return false;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#link?.close();
    for (const link of this.#masterLinks.values()) link?.close();
    this.#client.disconnect();
  }

  #watch(client: RedisClient): void {
    client.on('error', (error: Error) => this.outage.failed(error.message));
    client.on('node error', (error: Error, node: string) => this.outage.failed(`${node}: ${error.message}`));
    client.on('ready', () => this.outage.succeeded());
  }

  #standalone(endpoint: RedisEndpoint): Redis {
    const client = new Redis(nodeOptions(endpoint, this.#password, this.#options));
    this.#watch(client);
    if (endpoint.path === undefined) {
      this.#detected = new Promise((resolve) => client.once('ready', () => void this.#detectCluster(client, endpoint).finally(resolve)));
    }
    return client;
  }

  /** A single URL may name one node of a cluster: ask it, and switch to a Cluster client if so. */
  async #detectCluster(client: Redis, endpoint: RedisEndpoint): Promise<void> {
    let info: string;
    try {
      info = await client.info('cluster');
    } catch {
      return; // it is down again: the requests will say so; a standalone Redis is the default
    }
    if (!/cluster_enabled:1/.test(info) || this.#closed || this.#client !== client) return;
    this.#log.notice('redis cluster', { seed: endpoint.url, why: 'the node says cluster_enabled:1' });
    this.#client = this.#cluster();
    client.disconnect();
  }

  #cluster(): Cluster {
    const tcp = this.#endpoints.filter((e) => e.path === undefined);
    if (tcp.length === 0) throw new UsageError('A Redis Cluster needs redis:// or rediss:// seed URLs: its nodes talk TCP');
    const seeds: ClusterNode[] = tcp.map((e) => ({ host: e.host!, port: e.port! }));
    const first = tcp[0]!;
    // The cluster client makes its node connections itself (lazily, queueing until each is up);
    // the deadline of run() bounds every request.
    const { host: _host, port: _port, db: _db, retryStrategy: _retry, lazyConnect: _lazy, enableOfflineQueue: _queue, ...redisOptions } = nodeOptions(first, this.#password, this.#options);
    const cluster = new Cluster(seeds, {
      redisOptions,
      enableOfflineQueue: false,
      enableAutoPipelining: this.#options.batched !== true,
      clusterRetryStrategy: backoff,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: this.#options.connectTimeoutMs ?? 1000,
      slotsRefreshInterval: 5000,
    });
    this.#watch(cluster);
    return cluster;
  }
}
