// Private temp files of one job (C: dcc_make_tmpnam / dcc_cleanup_tempfiles in tempfile.c and
// cleanup.c). Every name is created with O_CREAT|O_EXCL and mode 0600 in TMPDIR, so no other user
// can pre-create, read or swap it (a predictable /tmp name is a symlink attack waiting to happen).
// The job removes everything it made when it ends (the session does it after the answer is
// sent, so the client never waits for it), unless DISTCC_SAVE_TEMPS=1 keeps them for debugging.
// Files are made with synchronous calls: a create is three syscalls on a page-cache file, cheaper
// than three thread-pool round trips on the job's critical path.

import fs from 'node:fs/promises';
import { closeSync, constants as C, openSync, readdirSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/** How many random stems are tried before giving up (collisions are astronomically rare). */
const MAX_NAME_ATTEMPTS = 20;

// Names take 6 random bytes each from a pool refilled 4 KiB at a time: one read of the kernel's
// CSPRNG per ~680 names instead of one per name. /dev/urandom is read directly (node:crypto
// costs an --inetd job, a process per job, ~5 ms to load); where it cannot be opened, crypto.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function refillPool(): void {
  try {
    const fd = openSync('/dev/urandom', C.O_RDONLY);
    try {
      for (let at = 0; at < pool.length; ) {
        const n = readSync(fd, pool, at, pool.length - at, null);
        if (n <= 0) throw new Error('short read from /dev/urandom');
        at += n;
      }
    } finally {
      closeSync(fd);
    }
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the fallback only
    const { randomFillSync } = require('node:crypto') as typeof import('node:crypto');
    randomFillSync(pool);
  }
}

function randomStem(): string {
  if (poolAt + 6 > pool.length) {
    refillPool();
    poolAt = 0;
  }
  poolAt += 6;
  return `distccd_${pool.toString('hex', poolAt - 6, poolAt)}`;
}

/**
 * Opens `name(attempt)` with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, asking for a new name on
 * EEXIST (someone made that one first) up to MAX_NAME_ATTEMPTS times.
 */
function openExclusive(name: (attempt: number) => string, access: number = C.O_WRONLY): { readonly file: string; readonly fd: number } {
  for (let attempt = 0; ; attempt++) {
    const file = name(attempt);
    try {
      return { file, fd: openSync(file, access | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= MAX_NAME_ATTEMPTS) throw error;
    }
  }
}

/** An exclusive `<dir>/distccd_<random><ext>`, as openExclusive. */
export function openRandom(dir: string, ext: string, access?: number): { readonly file: string; readonly fd: number } {
  return openExclusive(() => path.join(dir, `${randomStem()}${ext}`), access);
}

/** Writes all of `data` at the descriptor's position. */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let at = 0; at < data.byteLength; ) at += writeSync(fd, data, at, data.byteLength - at);
}

/**
 * How often TMPDIR is listed for side files at most. A listing costs in proportion to everything
 * in the directory (a shared /tmp can hold thousands of entries), so one listing serves every job
 * that finished since the last: the first job after a quiet spell is swept at once, the others
 * wait for the next listing, at most this long. Kept short: a job's connection stays open (and
 * counts against the connection limit) until its files are gone.
 */
export const SWEEP_INTERVAL_MS = 100;

/** The paths in `dir`, among `names`, that start with one of `prefixes`. */
function underStems(dir: string, names: readonly string[], prefixes: readonly string[]): string[] {
  return names.filter((n) => prefixes.some((p) => n.startsWith(p))).map((n) => path.join(dir, n));
}

/**
 * What an unlink that failed with `error` means: a directory the compiler made (EISDIR, or EPERM
 * on some kernels), to remove recursively; a file already gone; or a failure to report once the
 * rest are removed.
 */
function unlinkFailure(error: unknown): 'directory' | 'gone' | 'failed' {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EPERM' ? 'directory' : code === 'ENOENT' ? 'gone' : 'failed';
}

interface SweepWaiter {
  readonly prefixes: readonly string[];
  readonly resolve: (files: string[]) => void;
}

const sweeps = new Map<string, SweepWaiter[]>(); // directory -> jobs waiting for its next listing
let sweepTimer: NodeJS.Timeout | undefined;
let sweeping = false;
let lastSweep = -Infinity;

/** The files in `dir` whose names start with one of `prefixes`, from a listing made after this call. */
function sideFiles(dir: string, prefixes: readonly string[]): Promise<string[]> {
  return new Promise((resolve) => {
    const waiting = sweeps.get(dir);
    if (waiting === undefined) sweeps.set(dir, [{ prefixes, resolve }]);
    else waiting.push({ prefixes, resolve });
    scheduleSweep();
  });
}

function scheduleSweep(): void {
  if (sweepTimer !== undefined || sweeping) return; // a listing in flight schedules the next
  sweepTimer = setTimeout(() => void sweep(), Math.max(0, lastSweep + SWEEP_INTERVAL_MS - performance.now()));
}

async function sweep(): Promise<void> {
  sweepTimer = undefined;
  sweeping = true;
  lastSweep = performance.now(); // monotonic: a clock set back must not stall removals
  const batch = [...sweeps];
  sweeps.clear();
  await Promise.all(batch.map(async ([dir, waiters]) => {
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    for (const w of waiters) w.resolve(underStems(dir, names, w.prefixes));
  }));
  sweeping = false;
  if (sweeps.size > 0) scheduleSweep();
}

export class TempFiles {
  readonly #dir: string;
  readonly #keep: boolean;
  readonly #inline: boolean;
  readonly #made: string[] = [];
  // One random stem per job: the compiler's side files (-save-temps, -gsplit-dwarf, -fstack-usage,
  // dump files) are named after it, so one prefix finds them all at removal.
  #stem = randomStem();

  /** inline: removeAll uses synchronous calls and its own listing (see JobSettings.inlineCleanup). */
  constructor(dir: string, options: { keep?: boolean; inline?: boolean } = {}) {
    this.#dir = dir;
    this.#keep = options.keep === true;
    this.#inline = options.inline === true;
  }

  /** Every path made so far (for tests and the debug log). */
  get paths(): readonly string[] {
    return this.#made;
  }

  /**
   * Creates an empty private file `<dir>/distccd_<random><ext>` and returns its path. With `data`
   * the bytes are written through the same descriptor, so nothing else can open it first.
   */
  create(ext: string, data?: Uint8Array): string {
    const { file, fd } = this.open(ext);
    try {
      if (data !== undefined) writeAll(fd, data);
    } finally {
      closeSync(fd);
    }
    return file;
  }

  /**
   * Creates the file as `create` does and leaves it open for writing: the caller fills it later
   * (the source arrives after the command line) and closes `fd`. A name someone else made first
   * (EEXIST) moves this job to a new stem.
   */
  open(ext: string): { readonly file: string; readonly fd: number } {
    const made = openExclusive((attempt) => {
      if (attempt > 0) this.#stem = randomStem();
      return path.join(this.#dir, `${this.#stem}${ext}`);
    });
    this.#made.push(made.file);
    return made;
  }

  /** Records a path made by someone else (the compiler's output) so it is removed too. */
  adopt(file: string): void {
    this.#made.push(file);
  }

  /**
   * Removes every file made (a missing one is fine) and every file the compiler put beside them
   * under the same stem (`distccd_<random>.*`: -save-temps .s, -gsplit-dwarf .dwo,
   * -fstack-usage .su, -fcallgraph-info .ci ...; the live fuzzer found them left in TMPDIR).
   * The files made are unlinked at once, the side files after the next listing of the directory
   * (shared between jobs: SWEEP_INTERVAL_MS). Unlinks and listings run off the event loop: on a
   * filesystem mounted with `discard` an unlink that frees blocks waits for the device (0.2 ms a
   * file measured here), which must not hold up every other job the loop serves. Keeps
   * everything with DISTCC_SAVE_TEMPS=1.
   */
  async removeAll(): Promise<void> {
    if (this.#keep) return;
    const stems = new Map<string, Set<string>>();
    for (const f of this.#made) {
      const base = path.basename(f);
      const dot = base.indexOf('.');
      if (base.startsWith('distccd_') && dot > 0) {
        const dir = path.dirname(f);
        if (!stems.has(dir)) stems.set(dir, new Set());
        stems.get(dir)!.add(base.slice(0, dot + 1));
      }
    }
    const made = new Set(this.#made);
    if (this.#inline) {
      this.#removeNow(made, stems);
      return;
    }
    const dirs: string[] = [];
    let failure: unknown;
    const unlinkAll = (files: Iterable<string>): Promise<unknown> => Promise.all([...files].map((f) => fs.unlink(f).catch((error: unknown) => {
      const why = unlinkFailure(error);
      if (why === 'directory') dirs.push(f);
      else if (why === 'failed') failure ??= error;
    })));
    await Promise.all([
      unlinkAll(made),
      ...[...stems].map(async ([dir, prefixes]) => unlinkAll((await sideFiles(dir, [...prefixes])).filter((f) => !made.has(f)))),
    ]);
    await Promise.all(dirs.map((d) => fs.rm(d, { force: true, recursive: true })));
    if (failure !== undefined) throw failure;
  }

  /** removeAll with synchronous calls: the files made, then what one listing finds beside them. */
  #removeNow(made: ReadonlySet<string>, stems: ReadonlyMap<string, ReadonlySet<string>>): void {
    const doomed = new Set(made);
    for (const [dir, prefixes] of stems) {
      let names: string[] = [];
      try {
        names = readdirSync(dir);
      } catch {
        // The directory is gone: so is everything in it.
      }
      for (const f of underStems(dir, names, [...prefixes])) doomed.add(f);
    }
    let failure: unknown;
    for (const f of doomed) {
      try {
        unlinkSync(f);
      } catch (error) {
        const why = unlinkFailure(error);
        if (why === 'directory') rmSync(f, { force: true, recursive: true });
        else if (why === 'failed') failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  }
}
