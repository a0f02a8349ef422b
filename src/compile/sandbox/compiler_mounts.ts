// What a compiler needs to see inside its sandbox, found from the compiler itself rather than a
// list written here: the program as PATH resolves it, the programs the driver starts
// (`-print-prog-name` for cc1, cc1plus, as, collect2, and `-print-search-dirs` programs), the
// interpreter of a compiler that is a `#!` script (a wrapper), its message catalogs and locales,
// its default include directories (`-E -v`, for C and C++), and every shared library those programs
// load (ldd, which also names the ELF interpreter). Each file contributes its directory; each
// directory is bound read-only at its real path, and the symlinks met on the way there (Debian's
// merged /usr: /lib -> usr/lib, /lib64 -> usr/lib64, /bin -> usr/bin) are recreated, so the
// paths ld.so and the driver use resolve inside the sandbox as they do outside.
//
// On Debian this comes to /usr/bin, /usr/lib/gcc/<triplet>/<N>, /usr/libexec/gcc/... when
// present, /usr/lib/<triplet> (the libraries), /usr/include and /usr/local/include: the
// compiler's own directories, not /usr as a whole, and never /etc, /home, /var or /srv.
//
// The answer is memoised per compiler name and PATH: the probes run a dozen short processes
// (200-300 ms on a busy machine), once per compiler per daemon. A process that serves one job
// (--inetd) binds /usr whole instead when the compiler lives there (see wholeUsr), and finds the
// answer of an earlier process in a MountsMemory (probe_cache.ts) when what it rests on is
// unchanged: each answer carries its evidence, the identity (device, inode, size, times) of
// every file and directory the finding looked at, missing ones included, so a compiler upgraded,
// a library or include directory added or removed, a link retargeted, a PATH directory changed
// means finding again.
//
// Exports: findCompilerMounts(compiler, env, { wholeUsr, memory }) -> Promise<CompilerMounts>;
//          wholeUsr(program); identity(path); MountsMemory, Evidence (programs are found and probed by
//          ../compiler_probe.ts, as the object cache's key finds them)

import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import * as native from 'distkit-spawn';
import { resolveProgram, runProbe } from '../compiler_probe';

export interface CompilerMounts {
  /** The compiler as PATH resolves it (absolute), or undefined when PATH has none. */
  readonly program: string | undefined;
  /** Real directories to bind read-only, no one inside another, parents first. */
  readonly dirs: readonly string[];
  /** Symlinks to recreate: [link path, its target as stored]. */
  readonly links: ReadonlyArray<readonly [string, string]>;
}

/** What a finding rests on: [path, identity] of each path it looked at ('absent' for a missing one). */
export type Evidence = ReadonlyArray<readonly [string, string]>;

/** A finding: the mounts and their evidence. */
export interface Found {
  readonly mounts: CompilerMounts;
  readonly evidence: Evidence;
}

/** Findings kept between the processes of --inetd, each under an id (probe_cache.ts mountsMemory). */
export interface MountsMemory {
  recall(id: string): Found | undefined;
  remember(id: string, found: Found): void;
}

/** A path's identity (lstat: a link's own, after the links on the way): device, inode, size, times; 'absent' for a missing one. */
export function identity(p: string): string {
  return native.identities([p])[0]!;
}

/** Whether every path of `evidence` is as it was: in one call into the addon (a dozen lstats through Node cost ~0.3 ms, measured). */
function stillTrue(evidence: Evidence): boolean {
  const now = native.identities(evidence.map(([p]) => p));
  return evidence.every(([, id], i) => now[i] === id);
}

/** Whether any probe of one discovery was cut short (see probe). */
interface Trouble {
  failed: boolean;
}

/**
 * Runs a probe; its output (stdout, then stderr), or '' when it fails or takes longer than
 * `timeout`. A probe that could not run or finish (a timeout on a loaded machine, EAGAIN, EMFILE)
 * marks `trouble`: what it would have named is missing, so such a finding is used but never
 * remembered. A program that ran and refused (an exit status) answered: that is its answer.
 */
async function probe(file: string, args: readonly string[], env: NodeJS.ProcessEnv, trouble: Trouble, timeout = 10_000): Promise<string> {
  const { error, stdout, stderr } = await runProbe(file, args, env, timeout);
  if (error !== null && (error.killed === true || typeof error.code !== 'number')) trouble.failed = true;
  return error !== null ? '' : `${stdout.toString()}\n${stderr.toString()}`;
}

/** The directories a `-E -v` run says it ignores as nonexistent: made later, they would be searched. */
function missingIncludeDirs(text: string): string[] {
  return [...text.matchAll(/^ignoring nonexistent directory "(\/[^"]*)"$/gm)].map((m) => m[1]!);
}

/** The `<...>` include directories a `-E -v` run lists. */
function includeDirs(text: string): string[] {
  const start = text.indexOf('#include <...> search starts here:');
  const end = text.indexOf('End of search list.');
  if (start < 0 || end < start) return [];
  return text.slice(start, end).split('\n').slice(1).map((line) => line.trim().replace(/ \(framework directory\)$/, '')).filter((line) => line.startsWith('/'));
}

/** Absolute paths ldd names: libraries after "=>" and the interpreter line. */
function lddPaths(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const match = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (match !== null) out.push(match[1]!);
  }
  return out;
}

/** The program a `#!` line names, if `file` starts with one. */
function interpreterOf(file: string): string | undefined {
  let head = '';
  try {
    const fd = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(256);
      head = buffer.subarray(0, readSync(fd, buffer, 0, 256, 0)).toString('latin1');
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  return /^#!\s*(\/\S+)/.exec(head)?.[1];
}

/**
 * Walks `p` component by component as the kernel would, recording each symlink met, and returns
 * the real path (undefined if it does not exist).
 */
function realPathNoting(p: string, links: Map<string, string>, hops = 0): string | undefined {
  if (hops > 40) return undefined;
  let current = '/';
  const parts = path.normalize(p).split('/').filter((c) => c !== '');
  for (let i = 0; i < parts.length; i++) {
    const next = path.join(current, parts[i]!);
    let stat;
    try {
      stat = lstatSync(next);
    } catch {
      return undefined;
    }
    if (stat.isSymbolicLink()) {
      const target = readlinkSync(next);
      links.set(next, target);
      const rest = parts.slice(i + 1).join('/');
      return realPathNoting(path.resolve(current, target, rest), links, hops + 1);
    }
    current = next;
  }
  return current;
}

/**
 * Orders links by path, byte by byte. Not localeCompare: its first call loads ICU's collation
 * data, ~4 ms of CPU measured in every --inetd process (perf: init_resb_result, res_get*).
 */
const byLink = ([a]: readonly [string, string], [b]: readonly [string, string]): number => (a < b ? -1 : a > b ? 1 : 0);

/** Drops directories inside another and sorts parents first. */
function outermost(dirs: Iterable<string>): string[] {
  const sorted = [...new Set(dirs)].sort();
  const out: string[] = [];
  for (const dir of sorted) {
    if (!out.some((top) => dir === top || dir.startsWith(top === '/' ? '/' : `${top}/`))) out.push(dir);
  }
  return out;
}

/**
 * /usr whole, and the links of "/" that lead into it (merged /usr: /bin, /lib, /lib64, /sbin):
 * for a process that serves one job (--inetd), which cannot memoise the probes (~200-300 ms a
 * compiler, measured), and for a wrapper that answers no probe, when the compiler lives in /usr. /usr is the distribution's shareable,
 * read-only software tree (FHS), readable by every local user: it holds no other job's file and
 * nothing private of the server's.
 */
export function wholeUsr(program: string, seen?: Set<string>): CompilerMounts {
  seen?.add('/');
  const links: Array<[string, string]> = [];
  for (const name of readdirSync('/')) {
    const link = `/${name}`;
    try {
      if (!lstatSync(link).isSymbolicLink()) continue;
      const target = readlinkSync(link);
      if (/^\/?usr(\/|$)/.test(target)) links.push([link, target]);
    } catch {
      // Gone meanwhile: not needed.
    }
  }
  return { program, dirs: ['/usr'], links: links.sort(byLink) };
}

/** Finds the mounts of `compiler`, with the evidence they rest on; `trouble` says whether a probe was cut short. */
async function discover(compiler: string, env: NodeJS.ProcessEnv, wholeUsrWhenThere: boolean, trouble: Trouble): Promise<Found> {
  const seen = new Set<string>();
  const mounts = await discoverSeeing(compiler, env, wholeUsrWhenThere, seen, trouble);
  // Every file met, its real path too (a link in a PATH directory, a library's soname link).
  for (const p of [...seen]) {
    try {
      seen.add(realpathSync(p));
    } catch {
      // Missing: 'absent' is its evidence.
    }
  }
  const paths = [...seen].sort();
  const ids = native.identities(paths);
  return { mounts, evidence: paths.map((p, i) => [p, ids[i]!] as const) };
}

async function discoverSeeing(compiler: string, env: NodeJS.ProcessEnv, wholeUsrWhenThere: boolean, seen: Set<string>, trouble: Trouble): Promise<CompilerMounts> {
  const searchPath = env['PATH'] ?? '/usr/bin:/bin';
  const program = resolveProgram(compiler, searchPath, { seen });
  if (program === undefined) return { program, dirs: [], links: [] };
  seen.add(program);
  if (wholeUsrWhenThere && realpathSync(program).startsWith('/usr/')) return wholeUsr(program, seen);
  const probeEnv = { ...env, LC_ALL: 'C' };
  const files = new Set<string>([program]);
  const dirs = new Set<string>();
  // A gcc-like driver (or a wrapper passing its arguments on) answers -print-prog-name at once;
  // anything else (a wrapper that ignores them, or takes its time) gets no further probe, and
  // its first job waits at most PROBE_MS.
  const first = (await probe(program, ['-print-prog-name=cc1'], probeEnv, trouble, PROBE_MS)).trim().split('\n')[0] ?? '';
  const driver = first !== '' && !/\s/.test(first);
  // What a wrapper that is no driver runs cannot be known: in /usr, it gets /usr whole.
  if (!driver && realpathSync(program).startsWith('/usr/')) return wholeUsr(program, seen);
  if (driver) {
    const [names, searchDirs, cIncludes, cxxIncludes] = await Promise.all([
      Promise.all(['cc1plus', 'as', 'collect2'].map((name) => probe(program, [`-print-prog-name=${name}`], probeEnv, trouble))),
      probe(program, ['-print-search-dirs'], probeEnv, trouble),
      probe(program, ['-xc', '-E', '-v', '/dev/null'], probeEnv, trouble),
      probe(program, ['-xc++', '-E', '-v', '/dev/null'], probeEnv, trouble),
    ]);
    for (const raw of [first, ...names]) {
      const name = raw.trim().split('\n')[0] ?? '';
      const found = name === '' ? undefined : resolveProgram(name, searchPath, { seen });
      if (found !== undefined) files.add(found);
    }
    for (const line of searchDirs.split('\n')) {
      const match = /^(install|programs): =?(.*)$/.exec(line);
      if (match !== null) for (const dir of match[2]!.split(':')) if (dir.startsWith('/')) dirs.add(dir);
    }
    for (const dir of [...includeDirs(cIncludes), ...includeDirs(cxxIncludes)]) dirs.add(dir);
    // Absent now, searched once made: their absence is part of the evidence.
    for (const dir of [...missingIncludeDirs(cIncludes), ...missingIncludeDirs(cxxIncludes)]) seen.add(dir);
  }
  // A compiler that is a script (a wrapper) needs its interpreter too.
  for (const file of [...files]) {
    const interpreter = interpreterOf(file);
    if (interpreter !== undefined) files.add(interpreter);
  }
  const libraries = await Promise.all([...files].map((file) => probe('ldd', [file], probeEnv, trouble)));
  seen.add('/etc/ld.so.cache'); // where ld.so (and so ldd) finds libraries by name
  for (const text of libraries) for (const lib of lddPaths(text)) files.add(lib);
  // The programs' message catalogs and the C library's locales (<prefix>/share/locale,
  // <prefix>/lib/locale, for each program in <prefix>/bin): without them gcc falls back to ASCII quotes and English, and its
  // diagnostics would differ from an unconfined compile's.
  for (const file of files) {
    const bin = path.dirname(realpathSync(file));
    if (path.basename(bin) !== 'bin') continue; // the prefix of each program in a .../bin
    const prefix = path.dirname(bin);
    for (const dir of [path.join(prefix, 'share/locale'), path.join(prefix, 'lib/locale')]) dirs.add(dir);
  }
  for (const p of [...files, ...dirs]) seen.add(p);
  const links = new Map<string, string>();
  const real = new Set<string>();
  for (const file of files) {
    const resolved = realPathNoting(file, links);
    if (resolved !== undefined) real.add(path.dirname(resolved));
  }
  for (const dir of dirs) {
    const resolved = realPathNoting(dir, links);
    if (resolved !== undefined && statSync(resolved).isDirectory()) real.add(resolved);
  }
  for (const link of links.keys()) seen.add(link);
  for (const dir of real) seen.add(dir);
  const bound = outermost(real);
  // A link inside a bound directory comes with it; only those outside need making.
  const inside = (p: string): boolean => bound.some((top) => p.startsWith(`${top}/`));
  return {
    program,
    dirs: bound.map((dir) => realpathSync(dir)),
    links: [...links].filter(([link]) => !inside(link)).sort(byLink),
  };
}

/** How long the first probe may take before the program is taken for something other than a gcc-like driver. */
const PROBE_MS = 3000;

const memo = new Map<string, Promise<CompilerMounts>>();

/** How long a finding with a probe cut short is used before it is looked for again. */
const RETRY_MS = 60_000;

/**
 * The variables that steer what a gcc-like driver and ld.so find, besides PATH: part of a
 * remembered finding's id, since two processes may run with different ones (a daemon's do not).
 */
const STEERING = ['GCC_EXEC_PREFIX', 'COMPILER_PATH', 'LIBRARY_PATH', 'CPATH', 'C_INCLUDE_PATH', 'CPLUS_INCLUDE_PATH', 'OBJC_INCLUDE_PATH', 'LD_LIBRARY_PATH', 'LD_PRELOAD'];

/**
 * A finding from `memory` whose evidence still holds, else a new one, remembered there when it
 * is whole; `lasting` false: not to be memoised either (no compiler yet, or a probe cut short).
 */
async function recallOrDiscover(compiler: string, env: NodeJS.ProcessEnv, wholeUsrWhenThere: boolean, memory: MountsMemory | undefined): Promise<{ mounts: CompilerMounts; lasting: boolean }> {
  const id = JSON.stringify([compiler, env['PATH'] ?? '', wholeUsrWhenThere, ...STEERING.map((name) => env[name] ?? null)]);
  const known = memory?.recall(id);
  if (known !== undefined && stillTrue(known.evidence)) return { mounts: known.mounts, lasting: true };
  const trouble: Trouble = { failed: false };
  const found = await discover(compiler, env, wholeUsrWhenThere, trouble);
  const lasting = found.mounts.program !== undefined && !trouble.failed;
  if (lasting) memory?.remember(id, found);
  return { mounts: found.mounts, lasting };
}

/**
 * The mounts of `compiler` as the compiler environment `env` runs it; memoised per name and PATH.
 * `wholeUsr`: a compiler that lives in /usr gets /usr whole, without probes (see wholeUsr).
 * `memory`: where earlier processes left their findings (--inetd), and this one leaves its own.
 */
export function findCompilerMounts(compiler: string, env: NodeJS.ProcessEnv, options: { readonly wholeUsr?: boolean; readonly memory?: MountsMemory } = {}): Promise<CompilerMounts> {
  const key = `${compiler}\0${env['PATH'] ?? ''}`;
  let found = memo.get(key);
  if (found === undefined) {
    const settled = recallOrDiscover(compiler, env, options.wholeUsr === true, options.memory);
    found = settled.then((s) => s.mounts);
    memo.set(key, found);
    // A compiler not installed yet is not remembered: the next job asks again. Nor, for long, is
    // a finding a probe was cut short in (a timeout on a loaded machine, EMFILE): the jobs of the
    // next RETRY_MS use it (a wrapper that never answers the first probe costs its 3 s no more
    // often), then it is found again.
    settled.then((s) => {
      if (s.mounts.program === undefined) memo.delete(key);
      else if (!s.lasting) setTimeout(() => memo.get(key) === found && memo.delete(key), RETRY_MS).unref();
    }, () => memo.delete(key));
  }
  return found;
}
