// Who the compiler of a job is on this server, as a digest for the object-cache key: an upgrade
// of gcc, or of any program it runs (cc1, cc1plus, as), must be a miss.
//
// Each program is identified by its resolved path and its content. Hashing a 30 MB cc1 per job
// would cost more than a hit saves, so the content hash is memoised on what stat(2) says of the
// file (device, inode, size, mtime, ctime): a package upgrade writes a new inode (or at least a
// new ctime), and a stat per program per job is a few microseconds. What the driver says of
// itself (`-dumpfullversion -dumpmachine`) and where it finds its parts (`-print-prog-name=cc1`,
// `cc1plus`, `as`) costs a process each, so it is memoised per driver identity: the parts
// themselves are stat'ed again every job, so replacing cc1 alone is seen at once.
// A driver that is not gcc answers -print-prog-name with something else (clang prints the bare
// name); a name that resolves to no file is keyed as absent, which is still its identity.
// The whole digest is memoised too, per (name, PATH, the variables of the key), on the stat of
// every file it was found from: each PATH candidate before the driver (still absent), the driver
// (stat and lstat: a symlink moved to another gcc is seen) and each part. A job whose compiler
// is unchanged pays those stats (no exception, no realpath, no hash) and nothing else: an upgrade
// changes one of them, and the digest is made again from the memos above.
// A process per connection (--inetd) would hash cc1 and probe the driver for every job: given a
// `memoDir`, both memos are also kept there, one small file per stat key (and, for the driver's
// answers, per environment they depend on), written atomically.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { resolveProgram, runProbe } from '../compiler_probe';
import { affectsOutput, variablesOf } from './cache_key';

/** The parts of gcc asked for with -print-prog-name. */
export const COMPILER_PARTS: readonly string[] = ['cc1', 'cc1plus', 'as'];
/** A probe of the driver (-dumpfullversion, -print-prog-name) that takes longer has failed. */
const PROBE_TIMEOUT_MS = 10_000;

function statKey(file: string, st: Stats): string {
  return `${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/**
 * The candidates execvp(3) tries for `name` in `PATH`, in order (one, relative to `cwd`, when it
 * holds a slash). A directory named twice in PATH is tried once: a second try could only find
 * what the first found, so checking it again per job would only cost a system call.
 */
function candidatesOf(name: string, env: NodeJS.ProcessEnv, cwd: string): string[] {
  return name.includes('/') ? [path.resolve(cwd, name)] : [...new Set((env['PATH'] ?? '/usr/bin:/bin').split(':').map((dir) => path.join(dir || '.', name)))];
}

/** What stat(2) (or lstat) says of `file` now: mode, device, inode, size, mtime, ctime; undefined when it is not there. No exception is made for a missing file. */
type Signature = readonly [mode: number, dev: number, ino: number, size: number, mtimeMs: number, ctimeMs: number] | undefined;

function signature(file: string, link = false): Signature {
  let st: Stats | undefined;
  try {
    st = link ? lstatSync(file, { throwIfNoEntry: false }) : statSync(file, { throwIfNoEntry: false });
  } catch {
    st = undefined; // ENOTDIR, EACCES: as absent as ENOENT for a search
  }
  return st === undefined ? undefined : [st.mode, st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs];
}

/**
 * Whether `file` still has `sig`. An absent one is asked with access(2) alone: no Stats to build,
 * and no exception for the PATH directories the daemon's user may not enter (EACCES). Compared
 * field by field: a check runs for every program of every job, a hit's path.
 */
function stillSo([file, link, sig]: readonly [string, boolean, Signature]): boolean {
  if (sig === undefined && !link) return !existsSync(file);
  const now = signature(file, link);
  if (now === undefined || sig === undefined) return now === sig;
  for (let i = 0; i < 6; i++) if (now[i] !== sig[i]) return false;
  return true;
}

/** A digest and the signatures of the files it was made from, each still to match for the digest to stand. */
interface KnownIdentity {
  readonly digest: string;
  readonly checks: ReadonlyArray<readonly [file: string, link: boolean, signature: Signature]>;
}

function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file).on('data', (d) => hash.update(d)).once('error', reject).once('end', () => resolve(hash.digest('hex')));
  });
}

async function probe(program: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { error, stdout, stderr } = await runProbe(program, args, env, PROBE_TIMEOUT_MS);
  // A failed probe is still an answer (and part of the identity): a driver without
  // -dumpfullversion (clang) prints an error, the same one every time.
  return `${error === null ? 0 : error.code}\0${stdout.toString('latin1')}\0${stderr.toString('latin1')}`;
}

/** A part the driver names bare, found as execvp(3) would in PATH (from /), by its real path. */
function partOf(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const found = resolveProgram(name, env['PATH'] ?? '/usr/bin:/bin', { cwd: '/' });
  try {
    return found === undefined ? undefined : realpathSync(found);
  } catch {
    return undefined; // gone since
  }
}

/** What the driver's answers and its search for its parts depend on: PATH and the variables of the key (GCC_EXEC_PREFIX, COMPILER_PATH). */
function driverVariable(name: string): boolean {
  return name === 'PATH' || affectsOutput(name);
}

/** By frozen environment (the daemon's, the same object every job): its driver variables as `NAME=value` lines. */
const driverVariableLines = new WeakMap<NodeJS.ProcessEnv, string>();

/** The variables of `env` the driver depends on (driverVariable), as `NAME=value` joined by NULs; worked out once per frozen environment. */
function driverVariablesOf(env: NodeJS.ProcessEnv): string {
  const known = driverVariableLines.get(env);
  if (known !== undefined) return known;
  const lines = variablesOf(env, driverVariable).map(([v, value]) => `${v}=${value}`).join('\0');
  if (Object.isFrozen(env)) driverVariableLines.set(env, lines);
  return lines;
}

interface DriverAnswers {
  readonly about: string;
  readonly parts: readonly string[];
}

export class CompilerIdentities {
  readonly #memoDir: string | undefined;
  /** Content hash by stat key: survives as long as the file is unchanged. */
  readonly #contents = new Map<string, Promise<string>>();
  /** Driver answers (version, machine, where its parts are) by the driver's stat key. */
  readonly #drivers = new Map<string, Promise<DriverAnswers>>();
  /** Whole digests by name, PATH and the key's variables, with the signatures they stand on. */
  readonly #known = new Map<string, KnownIdentity>();

  /** `memoDir`: where the memos are kept across processes (made by the caller); none = in memory only. */
  constructor(options: { readonly memoDir?: string } = {}) {
    this.#memoDir = options.memoDir;
  }

  /** A memo kept on disk by `key`, or made by `make` and kept. */
  async #remembered<T>(key: string, make: () => Promise<T>): Promise<T> {
    if (this.#memoDir === undefined) return make();
    const file = path.join(this.#memoDir, createHash('sha256').update(key).digest('hex'));
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as T;
    } catch {
      // Not kept yet (or unreadable): make it.
    }
    const value = await make();
    try {
      const temp = `${file}.${process.pid}.tmp`;
      writeFileSync(temp, JSON.stringify(value));
      renameSync(temp, file);
    } catch {
      // A memo is only a saving.
    }
    return value;
  }

  /**
   * The digest (hex) of the compiler `name` as a job would run it: with `env` (PATH), from
   * `cwd`. Throws when the compiler cannot be found (the job then runs uncached and fails as
   * usual).
   */
  identify(name: string, env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
    const where = name.includes('/') ? cwd : '';
    const memo = `${name}\0${where}\0${driverVariablesOf(env)}`;
    const known = this.#known.get(memo);
    if (known !== undefined && known.checks.every(stillSo)) return Promise.resolve(known.digest);
    return this.#identifyAnew(name, env, cwd).then((made) => {
      this.#known.set(memo, made);
      return made.digest;
    });
  }

  async #identifyAnew(name: string, env: NodeJS.ProcessEnv, cwd: string): Promise<KnownIdentity> {
    // The signatures are taken before the files are read: a change meanwhile is seen by the next job.
    const checks: Array<readonly [string, boolean, Signature]> = [];
    let found: string | undefined;
    for (const file of candidatesOf(name, env, cwd)) {
      const sig = signature(file);
      checks.push([file, false, sig]);
      if (sig !== undefined && (sig[0] & 0o170000) === 0o100000) { // a regular file
        checks.push([file, true, signature(file, true)]);
        found = file;
        break;
      }
    }
    const driver = found === undefined ? undefined : realpathSync(found);
    if (driver === undefined) throw new Error(`compiler ${name} not found in PATH`);
    const hash = createHash('sha256').update(`driver\0${driver}\0${await this.#contentOf(driver)}\0`);
    const answers = await this.#driverAnswers(driver, env);
    hash.update(answers.about);
    for (const part of answers.parts) {
      if (part.startsWith('/')) checks.push([part, false, signature(part)]);
      const content = part.startsWith('/') ? await this.#contentOf(part).catch(() => 'absent') : 'absent';
      hash.update(`\0part\0${part}\0${content}`);
    }
    return { digest: hash.digest('hex'), checks };
  }

  async #contentOf(file: string): Promise<string> {
    const key = statKey(file, statSync(file));
    let known = this.#contents.get(key);
    if (known === undefined) {
      known = this.#remembered(`content\0${key}`, () => hashFile(file));
      this.#contents.set(key, known);
      known.catch(() => this.#contents.delete(key));
    }
    return known;
  }

  #driverAnswers(driver: string, env: NodeJS.ProcessEnv): Promise<DriverAnswers> {
    // Where the driver finds its parts depends on PATH and the variables of the key (GCC_EXEC_PREFIX, COMPILER_PATH).
    const where = variablesOf(env, driverVariable).map(([name, value]) => `${name}=${value}`);
    const key = `${statKey(driver, statSync(driver))}\0${where.join('\0')}`;
    let known = this.#drivers.get(key);
    if (known === undefined) {
      known = this.#remembered(`driver\0${key}`, async () => {
        const [about, ...named] = await Promise.all([
          probe(driver, ['-dumpfullversion', '-dumpmachine'], env),
          ...COMPILER_PARTS.map((part) => probe(driver, [`-print-prog-name=${part}`], env)),
        ]);
        const parts = named.map((answer, i) => {
          const printed = answer.split('\0')[1]!.trim();
          return (printed.startsWith('/') ? printed : partOf(printed || COMPILER_PARTS[i]!, env)) ?? `${COMPILER_PARTS[i]}:not-found`;
        });
        return { about: about!, parts };
      });
      this.#drivers.set(key, known);
    }
    return known;
  }
}
