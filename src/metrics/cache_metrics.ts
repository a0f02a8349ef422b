// dc_server's metrics and status: operations by command and result and the answer latency,
// counted in the engine's afterAnswer (each a field increment on a slot bound at start), and the
// store's own figures (SessionStore.stats: sessions, bytes, added, expired, evicted, removed) and
// the engine's connections, read only when scraped. Any SessionStore implementation reports the
// same way. The snapshot's and Redis's state are cache_state_metrics'.

import type { Registry } from 'prom-client';
import { performance } from 'node:perf_hooks';
import { ANSWER_TIMING_SAMPLE, type AnswerResult, type CacheStats } from '../cache/engine';
import type { StoreStats } from '../cache/stores/session_store';
import type { SnapshotStats } from '../cache/snapshot/snapshot_keeper';
import { OPERATION_NAMES, type Operation } from '../cache/wire/constants';
import { CountVec, HistogramVec, ReadValue, type CountSlot, type HistogramSlot } from './instruments';
import { RateWindow } from './rate_window';
import { RedisMetrics, watchSnapshot, type RedisState } from './cache_state_metrics';
import { humanBytes, type StatusView } from './status_page';

/** The results each command can have (resultOf in the engine). */
const RESULTS_OF: readonly (readonly AnswerResult[])[] = [
  ['ok', 'exists', 'rejected', 'closed'], // ADD
  ['hit', 'miss'], // GET
  ['ok', 'notok'], // REMOVE
  ['ok', 'notok'], // HAVE
];

/** A small number for each result, so an answer's slot is an array index: a property looked up
 * by a varying string name is a megamorphic load, several times the cost of the count itself. */
const RESULT_CODES = 8;
function codeOf(result: AnswerResult): number {
  switch (result) {
    case 'ok':
      return 0;
    case 'exists':
      return 1;
    case 'rejected':
      return 2;
    case 'closed':
      return 3;
    case 'hit':
      return 4;
    case 'miss':
      return 5;
    case 'notok':
      return 6;
  }
}

/** An answer takes microseconds in memory; a store that waits (Redis) takes longer. */
const ANSWER_BUCKETS = [0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1];

/** What dc_server's metrics read: the engine, and the store, snapshot and Redis it has. */
export interface CacheSources {
  readonly engine: CacheStats;
  /** Undefined on Redis: the sessions are not this process's. */
  readonly store?: { readonly stats: StoreStats };
  readonly snapshot?: { readonly stats: SnapshotStats };
  readonly redis?: RedisState;
}

export class CacheMetrics {
  readonly registry: Registry;
  /** The slot of each (operation, result) at operation * RESULT_CODES + codeOf(result). */
  readonly #slots: ReadonlyArray<CountSlot | undefined>;
  readonly #now: () => number;
  readonly #latency: readonly HistogramSlot[];
  readonly #operations: CountVec;
  readonly #engine: CacheStats;
  /** Undefined when the sessions live in Redis: only the engine's figures are ours to give. */
  readonly #store: { readonly stats: StoreStats } | undefined;
  readonly #rate: RateWindow;
  readonly #snapshot: { readonly stats: SnapshotStats; readonly tiles: () => StatusView['tiles'][number][] } | undefined;
  readonly #redis: RedisMetrics | undefined;

  constructor(registry: Registry, sources: CacheSources, options: { readonly now?: () => number } = {}) {
    this.registry = registry;
    this.#engine = sources.engine;
    this.#store = sources.store;
    this.#operations = new CountVec(registry, { name: 'dc_server_operations_total', help: 'Requests answered, by command (add, get, remove, have) and result (a get hits or misses; closed: the request closed the connection).', type: 'counter' });
    const slots: Array<CountSlot | undefined> = new Array<CountSlot | undefined>(RESULTS_OF.length * RESULT_CODES).fill(undefined);
    RESULTS_OF.forEach((results, op) => {
      for (const result of results) slots[op * RESULT_CODES + codeOf(result)] = this.#operations.child({ command: OPERATION_NAMES[op]!.toLowerCase(), result });
    });
    this.#slots = slots;
    this.#now = options.now ?? performance.now.bind(performance);
    const latency = new HistogramVec(registry, { name: 'dc_server_answer_duration_seconds', help: `Time to work out the answer to a request, by command (one answer in ${ANSWER_TIMING_SAMPLE} is timed).`, buckets: ANSWER_BUCKETS });
    this.#latency = OPERATION_NAMES.map((name) => latency.child({ command: name.toLowerCase() }));
    const read = (name: string, help: string, type: 'counter' | 'gauge', value: () => number): void => {
      new ReadValue(registry, { name, help, type, read: value });
    };
    const kept = sources.store;
    if (kept === undefined) {
      // On Redis: the key count Redis last gave (stats.sessions); Redis counts the rest itself.
      read('dc_server_sessions', 'Sessions in the Redis behind this front end (its key count, asked at most once a second).', 'gauge', () => this.#engine.sessions);
    } else {
      this.#readStore(read, () => kept.stats);
    }
    read('dc_server_connections_open', 'Client connections being served now.', 'gauge', () => this.#engine.connections);
    read('dc_server_connections_dropped_total', 'Connections closed because of a malformed request.', 'counter', () => this.#engine.dropped);
    const { snapshot, redis } = sources;
    this.#snapshot = snapshot === undefined ? undefined : { get stats() { return snapshot.stats; }, tiles: watchSnapshot(registry, () => snapshot.stats) };
    this.#redis = redis === undefined ? undefined : new RedisMetrics(registry, redis);
    this.#rate = new RateWindow(() => this.#engine.operations);
  }

  /** The Redis engine's `failed` hook: a request Redis failed. */
  redisFailed(operation: Operation): void {
    this.#redis?.failed(operation);
  }

  #readStore(read: (name: string, help: string, type: 'counter' | 'gauge', value: () => number) => void, store: () => StoreStats): void {
    read('dc_server_sessions', 'Sessions the store holds (expired ones not yet purged included).', 'gauge', () => store().sessions);
    read('dc_server_session_bytes', 'Bytes the store counts against its memory bound.', 'gauge', () => store().bytes);
    read('dc_server_sessions_added_total', 'Sessions stored.', 'counter', () => store().added);
    read('dc_server_sessions_expired_total', 'Sessions dropped because their timeout passed.', 'counter', () => store().expired);
    read('dc_server_sessions_evicted_total', 'Sessions dropped to make room (-sessions, -maxmemory).', 'counter', () => store().evicted);
    read('dc_server_sessions_removed_total', 'Sessions removed by a REMOVE request.', 'counter', () => store().removed);
  }

  /** The engine's afterAnswer: one slot increment, and for a timed answer (startedMs >= 0) one
   * histogram observation; `now` is read only then. */
  answered(operation: Operation, result: AnswerResult, startedMs: number): void {
    const slot = this.#slots[operation * RESULT_CODES + codeOf(result)];
    if (slot !== undefined) slot.value++;
    if (startedMs >= 0) this.#latency[operation]?.observe((this.#now() - startedMs) / 1000);
  }

  status(): StatusView & Record<string, unknown> {
    const store = this.#store?.stats ?? { sessions: this.#engine.sessions, bytes: 0, added: 0, expired: 0, evicted: 0, removed: 0 };
    const opsPerSecond = this.#rate.perSecond(10);
    const byCommand = this.#operations.get().values.map(({ labels, value }) => [labels['command']!, labels['result']!, value] as const);
    return {
      sessions: store.sessions,
      bytes: store.bytes,
      store,
      operations: this.#engine.operations,
      opsPerSecond,
      connections: this.#engine.connections,
      ...(this.#snapshot === undefined ? {} : { snapshot: this.#snapshot.stats }),
      ...(this.#redis === undefined ? {} : { redis: this.#redis.figures() }),
      tiles: [
        { label: this.#store === undefined ? 'sessions (in Redis)' : 'sessions', value: String(store.sessions) },
        ...(this.#store === undefined ? [] : [{ label: 'stored', value: humanBytes(store.bytes) }]),
        { label: 'operations / s (10 s)', value: opsPerSecond.toFixed(1) },
        { label: 'connections', value: String(this.#engine.connections) },
        { label: 'operations', value: String(this.#engine.operations) },
        ...(this.#store === undefined
          ? []
          : [
              { label: 'evicted', value: String(store.evicted), ...(store.evicted > 0 ? { tone: 'warn' as const } : {}) },
              { label: 'expired', value: String(store.expired) },
            ]),
        { label: 'malformed, dropped', value: String(this.#engine.dropped), ...(this.#engine.dropped > 0 ? { tone: 'bad' as const } : {}) },
        ...(this.#snapshot?.tiles() ?? []),
        ...(this.#redis?.tiles() ?? []),
      ],
      tables: [{ title: 'Operations by command and result', columns: ['command', 'result', 'count'], rows: byCommand.map((r) => [...r]) }],
    };
  }
}
