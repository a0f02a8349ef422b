// Private temp files of one job (C: dcc_make_tmpnam / dcc_cleanup_tempfiles in tempfile.c and
// cleanup.c). Every name is created with O_CREAT|O_EXCL and mode 0600 in TMPDIR, so no other user
// can pre-create, read or swap it (a predictable /tmp name is a symlink attack waiting to happen).
// The job removes everything it made when it ends (the session does it after the answer is
// sent, so the client never waits for it), unless DISTCC_SAVE_TEMPS=1 keeps them for debugging.
// Files are made with synchronous calls: a create is three syscalls on a page-cache file, cheaper
// than three thread-pool round trips on the job's critical path.

import fs from 'node:fs/promises';
import { closeSync, constants as C, openSync, writeSync } from 'node:fs';
import path from 'node:path';

/** How many random stems are tried before giving up (collisions are astronomically rare). */
const MAX_NAME_ATTEMPTS = 20;

// Names take 6 random bytes each from a pool refilled 4 KiB at a time: one call into the CSPRNG
// per ~680 names instead of one per name.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function randomStem(): string {
  if (poolAt + 6 > pool.length) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use: inetd mode starts a process per job
    const { randomFillSync } = require('node:crypto') as typeof import('node:crypto');
    randomFillSync(pool);
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

export class TempFiles {
  readonly #dir: string;
  readonly #keep: boolean;
  readonly #made: string[] = [];
  // One random stem per job: the compiler's side files (-save-temps, -gsplit-dwarf, -fstack-usage,
  // dump files) are named after it, so one prefix finds them all at removal.
  #stem = randomStem();

  constructor(dir: string, options: { keep?: boolean } = {}) {
    this.#dir = dir;
    this.#keep = options.keep === true;
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
   * The directory is listed once and the files unlinked together, all off the event loop: on a
   * filesystem mounted with `discard` an unlink that frees blocks waits for the device (0.2 ms
   * a file measured here), which must not hold up every other job the loop serves. Keeps
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
    const doomed = new Set(this.#made);
    for (const [dir, prefixes] of stems) {
      const names = await fs.readdir(dir).catch(() => [] as string[]);
      for (const name of names) if ([...prefixes].some((p) => name.startsWith(p))) doomed.add(path.join(dir, name));
    }
    const dirs: string[] = [];
    let failure: unknown;
    await Promise.all([...doomed].map((f) => fs.unlink(f).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'EISDIR' || error.code === 'EPERM') dirs.push(f); // a directory the compiler made (EPERM on some kernels)
      else if (error.code !== 'ENOENT') failure ??= error; // keep removing the rest, then say so
    })));
    await Promise.all(dirs.map((d) => fs.rm(d, { force: true, recursive: true })));
    if (failure !== undefined) throw failure;
  }
}
