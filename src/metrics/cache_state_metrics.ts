// dc_server's state beside the operations: its snapshot (-snapshot: what the start loaded, each
// write's time, duration and size, the failures) and its Redis (-redis: connected or not, the
// outages, the requests Redis failed by command). All read when scraped from the SnapshotKeeper's
// and the RedisConnection's own figures, except the failures by command, which the Redis engine
// reports as they happen (a bound slot increment, on the failure path only).

import type { Registry } from 'prom-client';
import type { SnapshotStats } from '../cache/snapshot/snapshot_keeper';
import { Operation } from '../cache/wire/constants';
import { CountVec, ReadValue, type CountSlot } from './instruments';
import { humanMs, type StatusView } from './status_page';

type Tile = StatusView['tiles'][number];

/** Registers dc_server_snapshot_*; returns the status page's tiles. */
export function watchSnapshot(registry: Registry, read: () => SnapshotStats): () => Tile[] {
  const value = (name: string, help: string, type: 'counter' | 'gauge', pick: (s: SnapshotStats) => number): void => {
    new ReadValue(registry, { name: `dc_server_snapshot_${name}`, help, type, read: () => pick(read()) });
  };
  value('loaded_sessions', 'Sessions the snapshot read at start put back.', 'gauge', (s) => s.load.loaded);
  value('load_expired_sessions', 'Sessions of the snapshot read at start that had expired meanwhile (dropped).', 'gauge', (s) => s.load.expired);
  value('writes_total', 'Snapshots written (every -snapshot-interval and at stop).', 'counter', (s) => s.writes);
  value('write_failures_total', 'Snapshot writes that failed (the sessions stayed in memory only).', 'counter', (s) => s.failures);
  value('last_write_timestamp_seconds', 'When the last snapshot was written, seconds since the epoch (0: none yet).', 'gauge', (s) => (s.lastWrite?.atMs ?? 0) / 1000);
  value('last_write_duration_seconds', 'How long the last snapshot write took (serving waits for it).', 'gauge', (s) => (s.lastWrite?.ms ?? 0) / 1000);
  value('last_write_sessions', 'Sessions the last snapshot holds.', 'gauge', (s) => s.lastWrite?.sessions ?? 0);
  value('last_write_bytes', 'Size of the last snapshot written.', 'gauge', (s) => s.lastWrite?.bytes ?? 0);
  return () => {
    const s = read();
    return [
      { label: 'snapshot loaded at start', value: String(s.load.loaded) },
      { label: 'snapshot last written', value: s.lastWrite === undefined ? 'not yet' : `${new Date(s.lastWrite.atMs).toISOString().slice(11, 19)} (${s.lastWrite.sessions}, ${humanMs(s.lastWrite.ms)})` },
      { label: 'snapshot failures', value: String(s.failures), ...(s.failures > 0 ? { tone: 'bad' as const } : {}) },
    ];
  };
}

/** What the metrics read of the Redis connection (RedisConnection). */
export interface RedisState {
  readonly connected: boolean;
  readonly outage: { readonly outages: number };
}

/** The Redis command each distcache operation becomes (src/cache/redis_engine). */
const REDIS_COMMAND: Readonly<Record<Operation, string>> = {
  [Operation.ADD]: 'set',
  [Operation.GET]: 'get',
  [Operation.REMOVE]: 'del',
  [Operation.HAVE]: 'exists',
};

export class RedisMetrics {
  readonly #redis: RedisState;
  readonly #errors: Readonly<Record<Operation, CountSlot>>;

  constructor(registry: Registry, redis: RedisState) {
    this.#redis = redis;
    new ReadValue(registry, { name: 'dc_server_redis_connected', help: '1 while the connection to Redis is ready, else 0 (it reconnects in the background).', type: 'gauge', read: () => (redis.connected ? 1 : 0) });
    new ReadValue(registry, { name: 'dc_server_redis_outages_total', help: 'Times Redis went away (each one logged once as "Redis down", then "Redis back").', type: 'counter', read: () => redis.outage.outages });
    const errors = new CountVec(registry, { name: 'dc_server_redis_errors_total', help: 'Requests Redis failed or did not answer in time, by Redis command (the client was answered 0x01, a failed lookup or add).', type: 'counter' });
    this.#errors = {
      [Operation.ADD]: errors.child({ command: REDIS_COMMAND[Operation.ADD] }),
      [Operation.GET]: errors.child({ command: REDIS_COMMAND[Operation.GET] }),
      [Operation.REMOVE]: errors.child({ command: REDIS_COMMAND[Operation.REMOVE] }),
      [Operation.HAVE]: errors.child({ command: REDIS_COMMAND[Operation.HAVE] }),
    };
  }

  /** The Redis engine's `failed` hook. */
  failed(operation: Operation): void {
    const slot = this.#errors[operation];
    if (slot !== undefined) slot.value++;
  }

  /** The raw figures of /status.json. */
  figures(): { connected: boolean; outages: number; errors: number } {
    return { connected: this.#redis.connected, outages: this.#redis.outage.outages, errors: Object.values(this.#errors).reduce((n, slot) => n + slot.value, 0) };
  }

  tiles(): Tile[] {
    const { connected, outages, errors } = this.figures();
    return [
      { label: 'redis', value: connected ? 'connected' : 'down', tone: connected ? 'good' : 'bad' },
      { label: 'redis outages', value: String(outages), ...(outages > 0 ? { tone: 'warn' as const } : {}) },
      { label: 'redis errors', value: String(errors), ...(errors > 0 ? { tone: 'bad' as const } : {}) },
    ];
  }
}
