// When dc_server's snapshot is read and written: loaded once at start (sessions that expired
// meanwhile are dropped, the others keep their absolute expiry) and then removed, written every -snapshot-interval
// while serving (so a crash loses at most that much) and once more at an orderly stop, after the
// last connection was answered. Works through the SessionStore interface only (entries, add), so
// any store keeps its sessions across a restart. A write is synchronous (encoded from the live
// store straight into the file), so writes never overlap and the store never changes mid-write;
// it holds up serving for its duration (see `npm run bench -- snapshot`).
// Why remove it once loaded: a crash later must not bring back, at the next start, sessions that
// clients removed (a REMOVE invalidates a session) or that the cache evicted since; after a
// crash the server starts from the last -snapshot-interval write, or empty as the original.

import fs from 'node:fs';
import type { Logger } from '../../log/index';
import type { SessionStore } from '../stores/session_store';
import { encodeSnapshot } from './snapshot_codec';
import { readSnapshotFile, writeSnapshotFile } from './snapshot_file';

export interface SnapshotKeeperOptions {
  /** The engine's clock: ms since the epoch (wall-clock anchored), as the snapshot stores expiry. */
  readonly clock: () => number;
  readonly log: Logger;
  /** Also write every this many ms; 0 = only at stop. */
  readonly intervalMs: number;
}

/** What load() put back. */
export interface SnapshotLoad {
  readonly loaded: number;
  readonly expired: number;
}

/** What the keeper has done since start, for the metrics and the status page. */
export interface SnapshotStats {
  /** Sessions the snapshot read at start put back, and those it dropped as expired meanwhile. */
  readonly load: SnapshotLoad;
  /** Snapshots written, and writes that failed. */
  readonly writes: number;
  readonly failures: number;
  /** The last successful write: when (clock ms), how long it took (ms), sessions and bytes; undefined before the first. */
  readonly lastWrite: { readonly atMs: number; readonly ms: number; readonly sessions: number; readonly bytes: number } | undefined;
}

export class SnapshotKeeper {
  readonly #file: string;
  readonly #store: SessionStore;
  readonly #options: SnapshotKeeperOptions;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #stats: SnapshotStats = { load: { loaded: 0, expired: 0 }, writes: 0, failures: 0, lastWrite: undefined };

  constructor(file: string, store: SessionStore, options: SnapshotKeeperOptions) {
    this.#file = file;
    this.#store = store;
    this.#options = options;
    this.#log = options.log;
  }

  get stats(): SnapshotStats {
    return this.#stats;
  }

  /** Puts the snapshot's unexpired sessions into the store; a bad file is logged and moved aside. */
  load(): SnapshotLoad {
    const load = this.#load();
    this.#stats = { ...this.#stats, load };
    return load;
  }

  #load(): SnapshotLoad {
    const started = performance.now();
    const now = this.#options.clock();
    const read = readSnapshotFile(this.#file, { now: new Date(now) });
    switch (read.kind) {
      case 'absent':
        this.#log.info('snapshot absent', { file: this.#file, why: 'first start, or the last stop wrote none' });
        return { loaded: 0, expired: 0 };
      case 'unreadable':
        this.#log.warning('snapshot unreadable', { file: this.#file, why: read.reason, sessions: 'starting empty' });
        return { loaded: 0, expired: 0 };
      case 'rejected':
        this.#log.warning('snapshot rejected', {
          file: this.#file,
          why: read.reason,
          ...(read.movedTo === undefined ? { move_failed: read.moveError ?? 'unknown' } : { moved_to: read.movedTo }),
          sessions: 'starting empty',
        });
        return { loaded: 0, expired: 0 };
      case 'ok':
        break;
    }
    let loaded = 0;
    let expired = 0;
    for (const { id, data, expiresAt } of read.sessions) {
      // The store's own rule: a session expires when now > expiresAt.
      if (now > expiresAt) expired++;
      else if (this.#store.add(now, id, data, expiresAt - now)) loaded++;
    }
    try {
      fs.unlinkSync(this.#file);
    } catch (error) {
      this.#log.warning('snapshot not removed', { file: this.#file, error: (error as NodeJS.ErrnoException).code ?? String(error), why: 'a crash before the next write would load it again' });
    }
    this.#log.notice('snapshot loaded', {
      file: this.#file,
      sessions: loaded,
      expired,
      age_s: Math.round((now - read.writtenAt) / 1000),
      bytes: read.bytes,
      ms: Math.round(performance.now() - started),
    });
    return { loaded, expired };
  }

  /** Starts the periodic writes (if an interval was given). */
  start(): void {
    if (this.#options.intervalMs <= 0) return;
    this.#timer = setInterval(() => this.#write('interval'), this.#options.intervalMs);
    this.#timer.unref();
  }

  /** Writes the store's sessions now; failures are logged, never thrown. */
  save(why: string): void {
    this.#write(why);
  }

  /** Stops the periodic writes and writes the final snapshot. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#write('stop');
  }

  #write(why: string): void {
    const started = performance.now();
    let sessions = 0;
    try {
      const now = this.#options.clock();
      // Encoded and written in one go: the store cannot change in between (see writeSnapshotFile).
      const bytes = writeSnapshotFile(this.#file, (write) => {
        sessions = encodeSnapshot(this.#store.entries(now), { writtenAt: now, emit: write });
      });
      const ms = performance.now() - started;
      this.#stats = { ...this.#stats, writes: this.#stats.writes + 1, lastWrite: { atMs: now, ms, sessions, bytes } };
      this.#log[why === 'interval' ? 'info' : 'notice']('snapshot written', { file: this.#file, why, sessions, bytes, ms: Math.round(ms) });
    } catch (error) {
      this.#stats = { ...this.#stats, failures: this.#stats.failures + 1 };
      const e = error as NodeJS.ErrnoException;
      this.#log.err('snapshot failed', { file: this.#file, why, error: e.code ?? e.message, sessions: 'kept in memory only' });
    }
  }
}
