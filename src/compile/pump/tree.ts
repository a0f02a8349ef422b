// The private file tree of a protocol-3 (pump) job. The client sends its working directory
// (CDIR) and every header the compile needs as absolute NAMEs, each followed by a FILE body or a
// LINK target; the server rebuilds them under a fresh temp root, so NAME /home/u/p/x.h lands at
// <root>/home/u/p/x.h and the compiler runs in <root><CDIR>.
//
// The C server trusts every NAME: "/../../etc/x" writes (and later deletes) any file the daemon
// can reach, and a LINK followed by a FILE under it writes through the link. Here every path is
// resolved component by component the way the kernel would, following the links this job made,
// and refused (DistkitError 'unsafe-path') when it would leave the root:
//   - a '..' that climbs above the root; a NAME that is not absolute or holds a NUL;
//   - any write (FILE, LINK, directory) whose path runs through a link that leaves the root, a
//     FILE whose last component is already a link (symlink-then-write), a NAME made twice;
//   - a LINK whose target resolves outside the root, now or after later links (verify());
//     absolute targets get the root prepended, as distccd does, so they stay inside;
//   - a symlink found in the tree that this job did not make (its target is not under root).
// One kind of link must leave the root, and is allowed: the include server's "system mirror"
// (include_server/compiler_defaults.py). For each default system include dir it sends
// `NAME /usr/include` + `LINK ../../(20 + depth times)/usr/include`: the '..' run climbs past the
// server root to the server's "/" and then names the same directory, so a re-rooted
// -I<root>/usr/include/foo reads the server's own /usr/include/foo. Accepted only when the target
// is exactly '../' repeated at least far enough to reach "/" followed by the NAME itself; nothing
// is ever written through it. Zero-length `.../forcing_technique_271828` FILEs only force a
// directory to exist. Files are made 0644 (never executable: gcc -B must not find a client
// program). What gcc itself may write through such links is allowlist.ts's business.
//
// Exports: PumpTree.create({ tmpDir? }) -> tree; tree.root; tree.makeCwd(cdir);
//          tree.writeFile(name, bytes); tree.makeLink(name, target); tree.verify(); tree.remove()

import fs from 'node:fs/promises';
import { constants as C } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DistkitError } from '../../errors';

/** Kernel limit on symlinks followed in one lookup (Linux MAXSYMLINKS). */
export const MAX_SYMLINK_HOPS = 40;
/** Longest NAME or LINK target accepted (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

function unsafe(message: string): DistkitError {
  return new DistkitError('unsafe-path', message);
}

function componentsOf(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

interface WalkOptions {
  /** Create missing directories on the way (writes) or treat missing parts lexically (checks). */
  readonly create: boolean;
  /** Follow a link in the last component. */
  readonly followFinal: boolean;
}

export class PumpTree {
  readonly root: string;
  readonly #links = new Map<string, string>(); // physical link path -> stored target (system mirrors excluded)
  /**
   * Physical paths already seen to be real directories. Nothing in a job removes or replaces an
   * entry (a NAME never overwrites a directory or a link), so they stay directories: a job with
   * hundreds of headers lstat()s each directory once, not once per file.
   */
  readonly #dirs = new Set<string>();

  private constructor(root: string) {
    this.root = root;
  }

  /**
   * `name` (6 characters, the length mkdtemp gives) names the root when no such entry exists yet:
   * gcc orders the strings of its debug sections by their hashes, so a root named the same for
   * the same request makes two compiles of it give the same bytes (the object cache relies on
   * it). Taken (another job, anything an attacker put there: mkdir never follows a link), the
   * root gets a random name as before.
   */
  static async create(options: { readonly tmpDir?: string; readonly name?: string } = {}): Promise<PumpTree> {
    const prefix = path.join(options.tmpDir ?? os.tmpdir(), 'distccd-pump-');
    let made: string | undefined;
    if (options.name !== undefined && /^[a-z0-9]{6}$/.test(options.name)) {
      made = await fs.mkdir(prefix + options.name, { mode: 0o700 }).then(() => prefix + options.name, () => undefined);
    }
    made ??= await fs.mkdtemp(prefix);
    // The realpath, so a symlinked TMPDIR (/tmp -> /private/tmp) cannot confuse the prefix checks.
    return new PumpTree(await fs.realpath(made));
  }

  /** Creates root+CDIR (and its parents) and returns it: the compiler's working directory. */
  async makeCwd(cdir: string): Promise<string> {
    this.#checkName(cdir, 'CDIR');
    const dir = await this.#walk(componentsOf(cdir), [], { create: true, followFinal: true }, `CDIR ${cdir}`);
    await fs.mkdir(dir, { recursive: true });
    return dir;
  }

  /** Writes a FILE body (already LZO-decoded) at root+name. */
  async writeFile(name: string, body: Uint8Array): Promise<string> {
    this.#checkName(name, 'NAME');
    const parts = componentsOf(name);
    if (parts.length === 0) throw unsafe(`NAME "${name}" names the root itself, not a file`);
    const target = await this.#walk(parts, [], { create: true, followFinal: false }, `NAME ${name}`);
    const st = await fs.lstat(target).catch(() => undefined);
    if (st?.isSymbolicLink()) throw unsafe(`NAME ${name} is already a link: writing a FILE through it is refused`);
    if (st?.isDirectory()) throw unsafe(`NAME ${name} is already a directory`);
    // O_NOFOLLOW: nothing may swap a link in between the check and the open.
    const handle = await fs.open(target, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_NOFOLLOW, 0o644);
    try {
      await handle.writeFile(body);
    } finally {
      await handle.close();
    }
    return target;
  }

  /** Makes root+name a symlink to target (root prepended to an absolute target). */
  async makeLink(name: string, target: string): Promise<string> {
    this.#checkName(name, 'NAME');
    if (target === '' || target.includes('\0') || Buffer.byteLength(target) > MAX_PATH_BYTES) {
      throw unsafe(`LINK target ${JSON.stringify(target.slice(0, 200))} for ${name} is empty, too long or holds a NUL`);
    }
    const parts = componentsOf(name);
    if (parts.length === 0) throw unsafe(`NAME "${name}" names the root itself, not a link`);
    const at = await this.#walk(parts, [], { create: true, followFinal: false }, `NAME ${name}`);
    if (await fs.lstat(at).then(() => true, () => false)) throw unsafe(`NAME ${name} already exists: a LINK cannot replace it`);
    const stored = target.startsWith('/') ? this.root + target : target;
    const mirror = this.#isSystemMirror(parts, at, target);
    if (!mirror) await this.#checkLinkTarget(at, stored, name);
    await fs.symlink(stored, at);
    // A mirror's meaning cannot change later: its parent directories are real and stay so.
    if (!mirror) this.#links.set(at, stored);
    return at;
  }

  /**
   * Re-checks every link once the tree is complete: a link accepted early can point somewhere
   * else after later links changed what its target's components mean.
   */
  async verify(): Promise<void> {
    for (const [at, stored] of this.#links) await this.#checkLinkTarget(at, stored, '/' + path.relative(this.root, at));
  }

  async remove(): Promise<void> {
    await fs.rm(this.root, { recursive: true, force: true });
  }

  /**
   * `../` repeated at least up to the server's "/", then exactly the NAME: the include server's
   * link to the server's own copy of a default system include directory.
   */
  #isSystemMirror(parts: readonly string[], at: string, target: string): boolean {
    const m = /^((?:\.\.\/)+)([^]*)$/.exec(target);
    if (m === null || parts.includes('..')) return false;
    const ups = m[1]!.length / 3;
    if (componentsOf(m[2]!).join('/') !== parts.join('/')) return false;
    const depth = componentsOf(path.dirname(at)).length; // components from "/" to the link's directory
    return ups >= depth;
  }

  #checkName(name: string, what: string): void {
    if (typeof name !== 'string' || !name.startsWith('/')) throw unsafe(`${what} ${JSON.stringify(name)} is not an absolute path`);
    if (name.includes('\0')) throw unsafe(`${what} ${JSON.stringify(name)} holds a NUL byte`);
    if (Buffer.byteLength(name) > MAX_PATH_BYTES) throw unsafe(`${what} is longer than ${MAX_PATH_BYTES} bytes`);
  }

  async #checkLinkTarget(at: string, stored: string, name: string): Promise<void> {
    const parent = componentsOf(path.relative(this.root, path.dirname(at)));
    const start = stored.startsWith('/') ? [] : parent;
    const rest = stored.startsWith('/') ? this.#insideRoot(stored, `LINK ${name}`) : componentsOf(stored);
    await this.#walk(rest, start, { create: false, followFinal: true }, `LINK ${name} -> ${stored}`);
  }

  /** Components below root of an absolute path this job wrote; anything else escapes. */
  #insideRoot(abs: string, what: string): string[] {
    if (abs !== this.root && !abs.startsWith(this.root + '/')) throw unsafe(`${what}: a link to ${abs} leaves the job tree`);
    return componentsOf(abs.slice(this.root.length));
  }

  /**
   * Resolves `pending` from the physical directory `dir` (components below root) like the
   * kernel would, inside the root: returns the physical path, with no links in its directories.
   */
  async #walk(pending: string[], dir: string[], options: WalkOptions, what: string): Promise<string> {
    const stack = [...dir];
    const queue = [...pending];
    let hops = 0;
    while (queue.length > 0) {
      const c = queue.shift()!;
      if (c === '..') {
        if (stack.length === 0) throw unsafe(`${what}: ".." climbs above the job tree`);
        stack.pop();
        continue;
      }
      const isLast = queue.length === 0;
      const here = path.join(this.root, ...stack, c);
      if (!isLast && this.#dirs.has(here)) {
        stack.push(c);
        continue;
      }
      const st = await fs.lstat(here).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
        throw err;
      });
      if (st?.isSymbolicLink() && (!isLast || options.followFinal)) {
        if (++hops > MAX_SYMLINK_HOPS) throw unsafe(`${what}: more than ${MAX_SYMLINK_HOPS} links (a loop?)`);
        const link = await fs.readlink(here);
        if (link.startsWith('/')) {
          stack.length = 0;
          queue.unshift(...this.#insideRoot(link, what));
        } else {
          queue.unshift(...componentsOf(link));
        }
        continue;
      }
      if (st === undefined && !isLast && options.create) {
        await fs.mkdir(here, { mode: 0o755 });
        this.#dirs.add(here);
      } else if (st !== undefined && !isLast && !st.isDirectory() && !st.isSymbolicLink()) {
        throw unsafe(`${what}: ${c} is a file, not a directory`);
      } else if (st?.isDirectory() === true) {
        this.#dirs.add(here);
      }
      stack.push(c);
    }
    return path.join(this.root, ...stack);
  }
}
