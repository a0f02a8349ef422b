// The object cache's first tier: entries as files on local disk, named by their key
// (<dir>/<first two hex digits>/<key>), so that several daemons and any number of concurrent
// jobs can share one directory with no index and no lock:
//   - a write goes to <dir>/tmp/<key>.<pid>.<n> and is renamed into place: a reader sees the
//     whole old entry or the whole new one, never a torn file (rename(2) is atomic);
//   - a hit sets the file's mtime to now: the mtime is the entry's last use (to the minute: an
//     entry this process touched less than TOUCH_INTERVAL_MS ago is not touched again);
//   - eviction lists the directory, sums the sizes and unlinks the least recently used files
//     until the store is under LOW_WATER of its size. Whoever evicts, a file another daemon is
//     reading stays readable through its open descriptor, and a file another daemon removed
//     first is simply gone (ENOENT is not an error).
// This process's idea of the size is the last listing plus what it wrote since; it lists again
// before a write would pass the limit, and after it wrote RESCAN_FRACTION of the size, so the
// writes of other daemons on the same directory are seen too.
// A file that fails the check given as `validate` (the entry codec's checksum) is a miss, and is
// removed. A directory that cannot be written (full, read-only, not ours) turns writes off until
// one succeeds again: logged once, counted, and the job compiles as it would without a cache.

import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../log/logger';
import { TIER_FAILED, type ObjectTier, type ObjectTierStats } from './object_store';
import { readEntryFile } from './read_entry_file';

/** Eviction brings the store down to this fraction of its size, so that it does not run at every write. */
export const LOW_WATER = 0.9;
/** A listing is taken again after this fraction of the size was written (other daemons write too). */
export const RESCAN_FRACTION = 1 / 8;
/** A hit within this long of this process's last touch of the entry leaves its mtime (the LRU order is to the minute). */
export const TOUCH_INTERVAL_MS = 60_000;
/** How many touch times are remembered; past it the memory starts afresh (a few more utimes). */
const TOUCHES_REMEMBERED = 65_536;
/** Temp files older than this are leftovers of a daemon that died mid-write. */
const STALE_TEMP_MS = 3600_000;
const KEY = /^[0-9a-f]{64}$/;

export interface DiskStoreOptions {
  readonly dir: string;
  /** The store's size limit in bytes (> 0). */
  readonly maxBytes: number;
  /** Entries larger than this are not stored (default: maxBytes). */
  readonly maxEntryBytes?: number;
  /** Checks bytes read back; false = corrupt: a miss, and the file is removed. */
  readonly validate?: (key: string, bytes: Buffer) => boolean;
  /** The clock of last-use times (ms); tests give a deterministic one. */
  readonly now?: () => number;
  /** Started as root: the directory is given to the account the daemon runs as. */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /**
   * False: do not list the directory at open (a process per connection, --inetd, would list it
   * for every job); its size is then learnt by a listing at one write in UNMEASURED_LISTING.
   */
  readonly measure?: boolean;
}

/** An unmeasured store lists (and evicts) at about one write in this many. */
export const UNMEASURED_LISTING = 32;

interface Listed {
  readonly file: string;
  readonly size: number;
  readonly used: number;
}

export class DiskStore implements ObjectTier {
  readonly name = 'disk';
  readonly #dir: string;
  readonly #max: number;
  readonly #maxEntry: number;
  readonly #validate: ((key: string, bytes: Buffer) => boolean) | undefined;
  readonly #now: () => number;
  readonly #log: Logger;
  #hits = 0;
  #misses = 0;
  #stores = 0;
  #errors = 0;
  /** Bytes on disk at the last listing, plus those written since (and reserved by writes in flight). */
  #bytes = 0;
  #entries = 0;
  #writtenSinceListing = 0;
  /** Bytes reserved by writes not yet renamed into place (in #bytes, not yet in a listing). */
  #reserved = 0;
  #evicting: Promise<void> | undefined;
  #writeFailure: string | undefined;
  #tempSerial = 0;
  #measured: boolean;
  #listing: Listed[] = [];
  /** When this process last set each entry's mtime (this.#now()). */
  readonly #touched = new Map<string, number>();

  private constructor(options: DiskStoreOptions, log: Logger) {
    if (!(options.maxBytes > 0)) throw new RangeError(`disk store size ${options.maxBytes} must be above 0`);
    this.#dir = options.dir;
    this.#max = options.maxBytes;
    this.#maxEntry = Math.min(options.maxEntryBytes ?? options.maxBytes, options.maxBytes);
    this.#validate = options.validate;
    this.#now = options.now ?? Date.now;
    this.#log = log;
    this.#measured = options.measure !== false;
  }

  /** Opens (making it if missing) the store's directory and measures what it holds. */
  static async open(options: DiskStoreOptions, log: Logger): Promise<DiskStore> {
    const store = new DiskStore(options, log);
    for (const sub of ['tmp', 'identities']) {
      await fs.mkdir(path.join(options.dir, sub), { recursive: true, mode: 0o755 });
      if (options.owner !== undefined) await fs.chown(path.join(options.dir, sub), options.owner.uid, options.owner.gid);
    }
    if (options.owner !== undefined) await fs.chown(options.dir, options.owner.uid, options.owner.gid);
    if (store.#measured) await store.#list();
    return store;
  }

  get stats(): ObjectTierStats {
    return { hits: this.#hits, misses: this.#misses, stores: this.#stores, errors: this.#errors, bytes: this.#bytes };
  }

  /** Entries at the last listing (for the start-up line). */
  get entries(): number {
    return this.#entries;
  }

  get dir(): string {
    return this.#dir;
  }

  /** Where the compiler identities are remembered (see CompilerIdentities). */
  get memoDir(): string {
    return path.join(this.#dir, 'identities');
  }

  #fileOf(key: string): string {
    return path.join(this.#dir, key.slice(0, 2), key);
  }

  async get(key: string): Promise<Buffer | undefined | typeof TIER_FAILED> {
    if (!KEY.test(key)) return this.#miss();
    const file = this.#fileOf(key);
    let bytes: Buffer;
    // The mtime is the last use that eviction reads: set while the file is open, when due.
    const now = this.#now();
    const touch = !(now - (this.#touched.get(key) ?? -Infinity) < TOUCH_INTERVAL_MS);
    try {
      bytes = await readEntryFile(file, touch ? now / 1000 : undefined);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return this.#miss();
      this.#failed('read', error as NodeJS.ErrnoException);
      return TIER_FAILED;
    }
    if (this.#validate !== undefined && !this.#validate(key, bytes)) {
      this.#errors++;
      this.#log.warning('object cache entry corrupt: removed', { tier: this.name, key, bytes: bytes.length });
      await fs.unlink(file).catch(() => undefined);
      return this.#miss();
    }
    this.#hits++;
    if (touch) this.#touch(key, now);
    return bytes;
  }

  /** Remembers that this process set the mtime of `key` at `now`. */
  #touch(key: string, now: number): void {
    if (this.#touched.size >= TOUCHES_REMEMBERED) this.#touched.clear();
    this.#touched.set(key, now);
  }

  #miss(): undefined {
    this.#misses++;
    return undefined;
  }

  async put(key: string, value: Buffer): Promise<void> {
    if (!KEY.test(key) || value.length > this.#maxEntry) return;
    let reserved = 0;
    const temp = path.join(this.#dir, 'tmp', `${key}.${process.pid}.${++this.#tempSerial}`);
    const nowMs = this.#now();
    const now = nowMs / 1000;
    // Content-addressed: an entry already there (another daemon's, or an identical job's) is the
    // same bytes; it only counts as used. A corrupt one was removed by the get that found it.
    if (await fs.utimes(this.#fileOf(key), now, now).then(() => true, () => false)) {
      this.#touch(key, nowMs);
      return;
    }
    try {
      await this.#makeRoom(value.length);
      reserved = value.length;
      // Held before the write: concurrent puts cannot all pass the limit.
      this.#bytes += reserved;
      this.#reserved += reserved;
      await fs.mkdir(path.dirname(this.#fileOf(key)), { recursive: true });
      await fs.writeFile(temp, value, { mode: 0o644 });
      await fs.utimes(temp, now, now);
      await fs.rename(temp, this.#fileOf(key));
      this.#touch(key, nowMs);
      this.#reserved -= reserved;
      reserved = 0;
      this.#stores++;
      this.#entries++;
      this.#writtenSinceListing += value.length;
      if (this.#writeFailure !== undefined) {
        this.#log.notice('object cache writable again', { tier: this.name, dir: this.#dir });
        this.#writeFailure = undefined;
      }
    } catch (error) {
      this.#bytes -= reserved;
      this.#reserved -= reserved;
      await fs.unlink(temp).catch(() => undefined);
      this.#failed('write', error as NodeJS.ErrnoException);
    }
  }

  /** Counts a failure; the log hears of a write failure once until writes work again. */
  #failed(what: 'read' | 'write', error: NodeJS.ErrnoException): void {
    this.#errors++;
    const reason = error.code ?? error.message;
    if (what === 'write') {
      if (this.#writeFailure !== undefined) return;
      this.#writeFailure = reason;
      this.#log.warning('object cache cannot write: jobs compile uncached until it can', { tier: this.name, dir: this.#dir, reason });
    } else {
      this.#log.warning('object cache read failed', { tier: this.name, dir: this.#dir, reason });
    }
  }

  /** Waits until `size` more bytes fit under the limit, listing and evicting as needed. */
  async #makeRoom(size: number): Promise<void> {
    if (!this.#measured && Math.random() * UNMEASURED_LISTING < 1) await this.#evict(size);
    if (this.#writtenSinceListing > this.#max * RESCAN_FRACTION) await this.#evict(0);
    for (let round = 0; this.#bytes + size > this.#max; round++) {
      if (round === 3) throw Object.assign(new Error(`no room for ${size} bytes under ${this.#max}`), { code: 'ENOSPC-CACHE' });
      await this.#evict(size);
    }
  }

  /** One listing-and-eviction at a time in this process; the callers of a running one wait for it. */
  #evict(incoming: number): Promise<void> {
    this.#evicting ??= this.#listAndEvict(incoming).finally(() => (this.#evicting = undefined));
    return this.#evicting;
  }

  async #listAndEvict(incoming: number): Promise<void> {
    let onDisk = await this.#list();
    const listed = this.#listing;
    const inFlight = this.#reserved;
    if (onDisk + inFlight + incoming > this.#max) {
      const target = this.#max * LOW_WATER;
      listed.sort((a, b) => a.used - b.used || (a.file < b.file ? -1 : 1));
      let removed = 0;
      for (const f of listed) {
        if (onDisk + inFlight + incoming <= target) break;
        try {
          await fs.unlink(f.file);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') continue;
        }
        onDisk -= f.size;
        removed++;
      }
      this.#entries -= removed;
      this.#log.info('object cache evicted', { tier: this.name, entries: removed, bytes: onDisk, max: this.#max });
    }
    this.#bytes = onDisk + this.#reserved;
  }

  /** Lists every entry (and removes stale temp files); returns the bytes on disk. */
  async #list(): Promise<number> {
    const listed: Listed[] = [];
    const names = await fs.readdir(this.#dir).catch(() => [] as string[]);
    for (const sub of names) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      const files = await fs.readdir(path.join(this.#dir, sub)).catch(() => [] as string[]);
      for (const name of files) {
        if (!KEY.test(name)) continue;
        const file = path.join(this.#dir, sub, name);
        const st = await fs.stat(file).catch(() => undefined);
        if (st !== undefined && st.isFile()) listed.push({ file, size: st.size, used: st.mtimeMs });
      }
    }
    await this.#removeStaleTemps();
    this.#listing = listed;
    this.#entries = listed.length;
    this.#writtenSinceListing = 0;
    const bytes = listed.reduce((sum, f) => sum + f.size, 0);
    this.#bytes = bytes + this.#reserved;
    return bytes;
  }

  async #removeStaleTemps(): Promise<void> {
    const tmp = path.join(this.#dir, 'tmp');
    const names = await fs.readdir(tmp).catch(() => [] as string[]);
    for (const name of names) {
      const st = await fs.stat(path.join(tmp, name)).catch(() => undefined);
      if (st !== undefined && Date.now() - st.mtimeMs > STALE_TEMP_MS) await fs.unlink(path.join(tmp, name)).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.#evicting;
  }
}
