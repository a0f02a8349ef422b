// Private temp files of one job (C: dcc_make_tmpnam / dcc_cleanup_tempfiles in tempfile.c and
// cleanup.c). Every name is created with O_CREAT|O_EXCL and mode 0600 in TMPDIR, so no other user
// can pre-create, read or swap it (a predictable /tmp name is a symlink attack waiting to happen).
// The job removes everything it made when it ends (the session does it after the answer is
// sent, so the client never waits for it), unless DISTCC_SAVE_TEMPS=1 keeps them for debugging.
// Files are made with synchronous calls: a create is three syscalls on a page-cache file, cheaper
// than three thread-pool round trips on the job's critical path.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { closeSync, constants as C, openSync, writeSync } from 'node:fs';
import path from 'node:path';

/** How many random names are tried before giving up (collisions are astronomically rare). */
const MAX_NAME_ATTEMPTS = 20;

export class TempFiles {
  readonly #dir: string;
  readonly #keep: boolean;
  readonly #made: string[] = [];

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
    for (let attempt = 0; ; attempt++) {
      const file = path.join(this.#dir, `distccd_${randomBytes(6).toString('hex')}${ext}`);
      let fd: number;
      try {
        fd = openSync(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST' && attempt < MAX_NAME_ATTEMPTS) continue;
        throw error;
      }
      this.#made.push(file);
      try {
        for (let at = 0; data !== undefined && at < data.byteLength; ) at += writeSync(fd, data, at, data.byteLength - at);
      } finally {
        closeSync(fd);
      }
      return file;
    }
  }

  /** Records a path made by someone else (the compiler's output) so it is removed too. */
  adopt(file: string): void {
    this.#made.push(file);
  }

  /**
   * Removes every file made (a missing one is fine) and every file the compiler put beside them
   * under the same random stem (`distccd_<random>.*`: -save-temps .s, -gsplit-dwarf .dwo,
   * -fstack-usage .su, -fcallgraph-info .ci ...; the live fuzzer found them left in TMPDIR).
   * Keeps everything with DISTCC_SAVE_TEMPS=1.
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
    const beside: string[] = [];
    for (const [dir, prefixes] of stems) {
      const names = await fs.readdir(dir).catch(() => [] as string[]);
      for (const name of names) if ([...prefixes].some((p) => name.startsWith(p))) beside.push(path.join(dir, name));
    }
    await Promise.all([...this.#made, ...beside].map((f) => fs.rm(f, { force: true, recursive: true })));
  }
}
