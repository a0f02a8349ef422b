// Which program a job may run, and which compiler arguments could make it run something else.
// CVE-2004-2687: a distcc request names the program to execute (argv[0]), so an open distccd
// is remote code execution. This file owns the defence:
//   - DISTCC_CMDLIST set: argv[0] must match a listed command on its last N '/'-separated words
//     (N = DISTCC_CMDLIST_NUMWORDS, or DISTCC_CMDLIST_MATCHWORDS as the man page calls it,
//     default 1) and is replaced by the full listed line. An unreadable list fails CLOSED (the
//     C server serves anything when it cannot read the file).
//   - otherwise, unless insecure mode (--enable-tcp-insecure): a leading /usr/bin/ or /bin/ is
//     stripped (case-insensitive), any other '/' is refused, and the name must be an executable
//     entry of the masquerade directory (Debian: /usr/lib/distcc, filled by
//     update-distcc-symlinks).
//   - always: arguments that load code or run programs chosen by the client (-fplugin=,
//     -specs=, -wrapper, -B, -iplugindir=) or add server directories (-imultilib, -imultiarch,
//     -Wa,@file) are refused, as are @response files that point outside the job (gcc
//     would read any server file and echo it in its diagnostics) and options that write a file
//     at a path the client names (-aux-info, -dumpdir, -dumpbase, -fdump-...=FILE); -MF too
//     without a job tree (protocols 1/2, whose real client never sends it), -save-temps with one
//     (pump trees hold client-made links that may lead out of the tree).
//
// Exports:
//   checkCompiler(argv, policy) -> Promise<{ ok: true, argv } | { ok: false, reason }>
//   commandListFromEnv(env) -> CommandListSetting | undefined   (reads the two env names)
//   readCommandList(path) -> Promise<string[]>                   (throws DistkitError 'cmdlist-unreadable')
//   DEFAULT_MASQUERADE_DIR
// Environment values and paths are parameters; nothing here reads process.env.

import fs from 'node:fs/promises';
import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { DistkitError } from '../errors';

export const DEFAULT_MASQUERADE_DIR = '/usr/lib/distcc';

export interface CommandListSetting {
  readonly file: string;
  /** How many trailing '/'-separated words form the key (>= 1). */
  readonly numWords: number;
}

export interface CompilerPolicy {
  /** DISTCC_CMDLIST in force, if any (see commandListFromEnv). */
  readonly commandList?: CommandListSetting;
  /** --enable-tcp-insecure / --make-me-a-botnet: skip the masquerade check (argument checks stay). */
  readonly insecure?: boolean;
  /** Directory whose executable entries name the allowed compilers (default /usr/lib/distcc). */
  readonly masqueradeDir?: string;
  /**
   * Protocol 3: the job's private tree and the compiler's working directory inside it. @file
   * arguments are allowed only when they resolve inside the tree. Without it (protocols 1/2)
   * every @file is refused.
   */
  readonly job?: { readonly root: string; readonly cwd: string };
}

export type CompilerCheck = { readonly ok: true; readonly argv: string[] } | { readonly ok: false; readonly reason: string };

/** Reads DISTCC_CMDLIST and DISTCC_CMDLIST_NUMWORDS (or _MATCHWORDS) from an env object. */
export function commandListFromEnv(env: Readonly<Record<string, string | undefined>>): CommandListSetting | undefined {
  const file = env['DISTCC_CMDLIST'];
  if (file === undefined || file === '') return undefined;
  const raw = env['DISTCC_CMDLIST_NUMWORDS'] ?? env['DISTCC_CMDLIST_MATCHWORDS'];
  let numWords = 1;
  if (raw !== undefined && raw !== '') {
    if (!/^[0-9]+$/.test(raw) || Number(raw) < 1 || Number(raw) > 4096) {
      throw new DistkitError('bad-cmdlist-numwords', `DISTCC_CMDLIST_NUMWORDS="${raw}" is not a whole number of words from 1 up: set it to 1 (the default) or more`);
    }
    numWords = Number(raw);
  }
  return { file, numWords };
}

/** The allowed commands, one per line; blank lines and lines starting with '#' are skipped. */
export async function readCommandList(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new DistkitError('cmdlist-unreadable', `Cannot read DISTCC_CMDLIST file ${file} (${why}): every job is refused until it is readable`, { cause: err });
  }
  return text.split('\n').map((l) => l.replace(/\s+$/, '')).filter((l) => l !== '' && !l.startsWith('#'));
}

/** The last n '/'-separated words of a command ("a/b/c", 2 -> "b/c"); all of it when shorter. */
function lastWords(command: string, n: number): string {
  let at = command.length;
  for (let i = 0; i < n; i++) {
    const slash = command.lastIndexOf('/', at - 1);
    if (slash < 0) return command;
    at = slash;
  }
  return command.slice(at + 1);
}

/** Options that make gcc write a file at a path the client names (relative to the job's cwd). */
const FILE_WRITING_OPTIONS = ['-aux-info', '-dumpdir', '-dumpbase', '-dumpbase-ext'];

/** A reason when this argument loads code, runs a program, or makes gcc write where the client says. */
/**
 * Options that point the compiler at server programs or directories the client names (issue 21).
 * The real client (distcc src/arg.c, src/strip.c) passes them through as the user wrote them; a
 * refused job is compiled by the client itself. `--sysroot` and `-isysroot` are not here: on
 * preprocessed input (protocols 1/2) gcc opens nothing under them (checked with strace) and cross
 * builds pass them on every compile; in a pump tree pump/argv.ts re-roots them.
 */
const SERVER_PATH_OPTIONS: ReadonlyArray<readonly [string, string]> = [
  ['-B', 'makes the driver run cc1 and as from a directory the client names'],
  ['-iplugindir', 'chooses the directory compiler plugins load from'],
  ['-imultilib', 'adds a server include directory the client names'],
  ['-imultiarch', 'adds a server include directory the client names'],
];

/** `-B dir`, `-Bdir`, `-iplugindir=dir`, `-imultilib dir`: the reason, when `a` is one of them. */
function serverPathOption(a: string, next: string | undefined): string | undefined {
  for (const [option, why] of SERVER_PATH_OPTIONS) {
    if (a === option) return `${a} ${next ?? ''} ${why}`;
    if (a.startsWith(option) && (option === '-B' || a.charAt(option.length) === '=')) return `${a} ${why}`;
  }
  if ((a.startsWith('-Wa,') && a.split(',').some((w) => w.startsWith('@'))) || (a === '-Xassembler' && (next ?? '').startsWith('@'))) {
    return `${a} makes the assembler read a response file the client names`;
  }
  return undefined;
}

function dangerousArgument(a: string, next: string | undefined, hasJobTree: boolean): string | undefined {
  const serverPath = serverPathOption(a, next);
  if (serverPath !== undefined) return serverPath;
  if (a.startsWith('-fplugin=') || a === '-fplugin') return `${a} loads a compiler plugin chosen by the client`;
  if (a.startsWith('-specs=') || a.startsWith('--specs=') || a === '-specs' || a === '--specs') return `${a} loads a specs file, which can run any command`;
  if (a === '-wrapper' || a.startsWith('-wrapper=')) return `${a} makes the compiler driver run another program`;
  if (FILE_WRITING_OPTIONS.includes(a) || FILE_WRITING_OPTIONS.some((o) => a.startsWith(o + '='))) return `${a} writes a file at a path the client names`;
  if (a.startsWith('-fdump-') && a.includes('=')) return `${a} writes a dump file at a path the client names`;
  if (a.startsWith('-fopt-info') && a.includes('=')) return `${a} writes optimization notes at a path the client names`;
  // -Wp,-MD,FILE and friends hand cpp a dependency file name (clients strip them in protocols 1/2).
  if (a.startsWith('-Wp,') && /,-M(D|MD|F)\b/.test(a)) return `${a} makes the preprocessor write a file at a path the client names`;
  if (hasJobTree) {
    // In a pump tree the cwd may hold links the client made (system mirrors lead out of the
    // tree): -save-temps would write main.i/main.s through them.
    if (a === '-save-temps' || a.startsWith('-save-temps=')) return `${a} writes intermediate files into the client's tree`;
  } else if (a === '-MF' || a.startsWith('-MF')) {
    // Protocol 1/2 clients strip -MF (they preprocess locally); in pump the server's own -MF comes last.
    return `${a} writes a file at a path the client names`;
  }
  return undefined;
}

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * gcc (libiberty expandargv) expands @file recursively: a response file inside the job may name
 * another, so its words are checked the same way.
 */
async function checkResponseFile(arg: string, job: NonNullable<CompilerPolicy['job']>, depth: number): Promise<string | undefined> {
  if (depth > 8) return `${arg}: response files nested too deep`;
  const target = path.resolve(job.cwd, arg.slice(1));
  if (!isInside(job.root, target)) return `response file ${arg} is outside the job`;
  let real: string;
  let text: string;
  try {
    real = await fs.realpath(target);
    text = await fs.readFile(real, 'utf8');
  } catch {
    return undefined; // gcc keeps an unreadable @file as a literal argument
  }
  if (!isInside(await fs.realpath(job.root), real)) return `response file ${arg} resolves outside the job`;
  const words = text.split(/\s+/).map((word) => word.replace(/^['"]+/, ''));
  for (const [i, w] of words.entries()) {
    if (w.startsWith('@')) {
      const why = await checkResponseFile(w, job, depth + 1);
      if (why !== undefined) return why;
    }
    const danger = dangerousArgument(w, words[i + 1], true);
    if (danger !== undefined) return `${danger} (in ${arg})`;
  }
  return undefined;
}

// Synchronous: one access(2) on a cached dentry is cheaper than a thread-pool round trip per job.
function isExecutableEntry(dir: string, name: string): boolean {
  try {
    accessSync(path.join(dir, name), fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Decides whether argv may run; on success returns the argv to run (argv[0] maybe replaced). */
export async function checkCompiler(argv: readonly string[], policy: CompilerPolicy): Promise<CompilerCheck> {
  if (argv.length === 0 || argv[0] === '') return { ok: false, reason: 'no compiler named' };
  const compiler = argv[0]!;
  if (compiler.includes('\0')) return { ok: false, reason: 'compiler name contains a NUL byte' };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    const danger = dangerousArgument(a, argv[i + 1], policy.job !== undefined);
    if (danger !== undefined) return { ok: false, reason: danger };
    if (a === '-Xpreprocessor' && (argv[i + 1] ?? '').startsWith('-M')) {
      return { ok: false, reason: `-Xpreprocessor ${argv[i + 1]} makes the preprocessor write a dependency file the client names` };
    }
    if (a.startsWith('@')) {
      if (policy.job === undefined) return { ok: false, reason: `response file ${a} is not part of the job` };
      const why = await checkResponseFile(a, policy.job, 0);
      if (why !== undefined) return { ok: false, reason: why };
    }
  }
  const out = [...argv];
  if (policy.commandList !== undefined) {
    const { file, numWords } = policy.commandList;
    let lines: string[];
    try {
      lines = await readCommandList(file);
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
    const key = lastWords(compiler, numWords);
    const hit = lines.find((line) => lastWords(line, numWords) === key);
    if (hit === undefined) return { ok: false, reason: `compiler ${compiler} is not in DISTCC_CMDLIST ${file} (matching the last ${numWords} word(s) "${key}")` };
    out[0] = hit;
    return { ok: true, argv: out };
  }
  if (policy.insecure === true) return { ok: true, argv: out };
  let name = compiler;
  for (const prefix of ['/usr/bin/', '/bin/']) {
    if (name.slice(0, prefix.length).toLowerCase() === prefix) {
      name = name.slice(prefix.length);
      break;
    }
  }
  if (name.includes('/')) return { ok: false, reason: `compiler ${compiler} must be a bare name (or set DISTCC_CMDLIST, or pass --enable-tcp-insecure)` };
  const dir = policy.masqueradeDir ?? DEFAULT_MASQUERADE_DIR;
  if (name === '.' || name === '..' || !isExecutableEntry(dir, name)) {
    return { ok: false, reason: `compiler ${name} is not an executable entry of ${dir} (run update-distcc-symlinks, or add it there)` };
  }
  return { ok: true, argv: out };
}
