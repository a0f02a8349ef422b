// Runs the compiler of one job (C: dcc_spawn_child and dcc_collect_child in exec.c and serve.c).
// The child gets stdin /dev/null, its own session and process group (so a timeout or a client
// that gave up kills gcc and every cc1/as it started), no descriptor but 0-2, default signal
// handling, cwd as asked, a lower priority, and its stdout/stderr in two nameless temp files (C
// distccd uses named ones). The answer is the raw wait status, exactly what STAT carries (core
// bit included).
//
// The spawn is posix_spawn from src/native/spawn (vfork speed: Node's own spawn forks the whole
// daemon and cost ~1.5 ms of the event loop per job). Unlike the C server there is no polling:
// the child's exit (a pidfd on the event loop, or SIGCHLD on kernels before 5.3), the job
// lifetime timer and the client's EOF are events, so a job costs no fixed second in --inetd or
// --no-fork mode.
//
// A protocol-1 job on a socket is answered by the native exit handler itself (NativeAnswer): the
// captures and the object are read and sent in C the moment the compiler is reaped, so the
// client's wait after its compiler ends is a few syscalls, not a cold pass through this file,
// job.ts and session.ts (~0.4 ms a job, measured by scheduler tracing).

import { closeSync, constants as C, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import * as native from 'distkit-spawn';
import type { AnswerPlan, ExitCallback } from 'distkit-spawn';
import { jobMayRun, type HostJob } from './sandbox/sandbox_host';
import type { Bind, HostLaunch, Sandbox, SpawnLimits } from './sandbox/sandbox';
import { openRandom } from './temp_files';

/** Most bytes kept from the compiler's stdout or stderr; the rest is dropped with a note. */
export const MAX_CAPTURE_BYTES = 16 * 1024 * 1024;

export interface CompilerRun {
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Added to the daemon's own priority (setpriority), as distccd's --nice. */
  readonly nice: number;
  /** Kill after this long (0 = never): --job-lifetime. */
  readonly lifetimeMs: number;
  /** Aborted when the client goes away. */
  readonly signal?: AbortSignal;
  /** Where the stdout/stderr capture files are made (and unlinked at once); default os.tmpdir(). */
  readonly scratchDir?: string;
  /**
   * Capture files made ahead of time (openCaptures): the caller opened them before the job's
   * source arrived and closes them after the answer, so neither costs the client any time.
   * Without them runCompiler makes its own and closes them when the compiler is done.
   */
  readonly captures?: CaptureFiles;
  /**
   * Answer the client from the native exit handler (protocol 1 only, pidfd watching only): see
   * NativeAnswer. The outcome is then 'answered' unless that path declined.
   */
  readonly answer?: NativeAnswer;
  /**
   * Run inside this sandbox (sandbox/sandbox.ts): `cwd` is then the directory inside it, and
   * `binds` the job's own files; run.cwd stays the host directory bubblewrap starts in. `root`:
   * the directory all of the job's files lie in (TMPDIR), which its compiler's sandbox host binds.
   */
  readonly sandbox?: { readonly sandbox: Sandbox; readonly cwd: string; readonly binds: readonly Bind[]; readonly root?: string };
}

/**
 * Where and how to answer the moment the compiler is reaped, before any JavaScript runs: the
 * client's socket, and the object the compiler was told to write. The answer is exactly what
 * encodeResponse makes of the captures and the object for protocol 1; anything unusual (a capture
 * over 1 MiB, an object that cannot be read) is left to the caller, as is a job that timed out or
 * whose client left.
 */
export interface NativeAnswer {
  /** The client's socket; nothing may be queued on it. */
  readonly socket: number;
  /** The request's DIST, echoed in DONE: 0 or 1 (protocol 1, uncompressed). */
  readonly version: number;
  readonly object: string;
}

/** The two files a compiler's stdout and stderr go to. */
export interface CaptureFiles {
  readonly stdout: number;
  readonly stderr: number;
  /** Closes both (idempotent). */
  close(): void;
}

export type CompilerOutcome =
  | { readonly kind: 'exited'; readonly status: number; readonly stdout: Buffer; readonly stderr: Buffer }
  | { readonly kind: 'timeout'; readonly stdout: Buffer; readonly stderr: Buffer }
  /** Answered by the native exit handler; `rest` is what the socket did not take at once. */
  | { readonly kind: 'answered'; readonly status: number; readonly rest?: Buffer; readonly sent: number }
  /** The native exit handler's send failed: the client is gone. */
  | { readonly kind: 'unanswered'; readonly status: number; readonly reason: string }
  | { readonly kind: 'aborted' }
  | { readonly kind: 'exec-failed'; readonly reason: string };

// How a child's exit reaches us. A pidfd (Linux 5.3+) wakes the event loop directly and the
// native side reaps that one child. Without it, SIGCHLD: libuv reaps only its own children, so
// every SIGCHLD polls all of ours (signals coalesce), and a ref'd 1 s timer keeps the loop alive
// while any runs and catches anything a signal could miss.
let exitWatching: 'pidfd' | 'sigchld' = 'pidfd';

/** Chooses how exits are watched: tests use it to run the SIGCHLD path a new kernel never takes. */
export function setExitWatching(mode: 'pidfd' | 'sigchld'): void {
  exitWatching = mode;
}

const running = new Map<number, (status: number | Error) => void>();
let keepAlive: NodeJS.Timeout | undefined;

function reapAll(): void {
  for (const [pid, done] of running) {
    let status: number | Error | undefined;
    try {
      status = native.reap(pid);
    } catch (error) {
      status = error as Error; // ECHILD: something else waited for it; say so rather than hang
    }
    if (status === undefined) continue;
    running.delete(pid);
    done(status);
  }
  if (running.size === 0 && keepAlive !== undefined) {
    clearInterval(keepAlive);
    keepAlive = undefined;
  }
}

let listening = false;
/** Installs the SIGCHLD listener: before each spawn in SIGCHLD mode, and by watch() on a fallback. */
function listenForExits(): void {
  if (listening) return;
  process.on('SIGCHLD', reapAll);
  listening = true;
}

function watch(pid: number, done: ExitCallback, answer?: AnswerPlan): void {
  if (exitWatching === 'pidfd') {
    try {
      if (native.watch(pid, done, answer)) return;
      exitWatching = 'sigchld'; // ENOSYS: a kernel before 5.3, for good
    } catch {
      // No pidfd for this one child (e.g. EMFILE): it goes the SIGCHLD way.
    }
  }
  const late = !listening; // the spawn came before the listener: the exit may already be here
  listenForExits();
  running.set(pid, done);
  keepAlive ??= setInterval(reapAll, 1000);
  if (late) reapAll();
}

const errnoNames = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

// Linux O_TMPFILE (__O_TMPFILE | O_DIRECTORY; __O_TMPFILE is 020000000 on every architecture
// Node runs on): a file with no name at all, freed on close. Filesystems without it get an
// exclusive named file, unlinked at once. They refuse it with EISDIR (kernels before 3.11) or
// EOPNOTSUPP (FUSE, NFS, vfat ...), which libuv, and so Node, names ENOTSUP.
const O_TMPFILE = os.platform() === 'linux' ? 0o20000000 | C.O_DIRECTORY : 0;
let tmpfileWorks = O_TMPFILE !== 0;

/** A private 0600 file in `dir` that only its descriptor reaches. */
function scratchFile(dir: string): number {
  if (tmpfileWorks) {
    try {
      return openSync(dir, C.O_RDWR | O_TMPFILE, 0o600);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EINVAL') throw error;
      tmpfileWorks = false;
    }
  }
  const { file, fd } = openRandom(dir, '.capture', C.O_RDWR);
  unlinkSync(file);
  return fd;
}

/** Opens a stdout and a stderr capture file in `dir` for one compiler run. */
export function openCaptures(dir: string): CaptureFiles {
  const stdout = scratchFile(dir);
  let stderr: number;
  try {
    stderr = scratchFile(dir);
  } catch (error) {
    closeSync(stdout);
    throw error;
  }
  let open = true;
  return {
    stdout,
    stderr,
    close(): void {
      if (!open) return;
      open = false;
      closeSync(stdout);
      closeSync(stderr);
    },
  };
}

// Most compilers print nothing or little: one read into this buffer (reused: reads are
// synchronous) settles the usual case without an fstat.
const FIRST_READ = 64 * 1024;
const firstRead = Buffer.allocUnsafe(FIRST_READ);

/** What the compiler wrote to `fd`: the first MAX_CAPTURE_BYTES, then a note of how much was dropped. */
function captured(fd: number): Buffer {
  const n = readSync(fd, firstRead, 0, FIRST_READ, 0);
  if (n < FIRST_READ) return n === 0 ? Buffer.alloc(0) : Buffer.from(firstRead.subarray(0, n));
  const size = fstatSync(fd).size;
  const keep = Math.min(size, MAX_CAPTURE_BYTES);
  const bytes = Buffer.allocUnsafe(keep);
  firstRead.copy(bytes, 0, 0, Math.min(n, keep));
  let got = Math.min(n, keep);
  while (got < keep) {
    const more = readSync(fd, bytes, got, keep - got, got);
    if (more === 0) break;
    got += more;
  }
  const kept = bytes.subarray(0, got);
  return size <= MAX_CAPTURE_BYTES ? kept : Buffer.concat([kept, Buffer.from(`\n[distccd: ${size - MAX_CAPTURE_BYTES} more bytes dropped]\n`)]);
}

// The daemon hands every job the same environment object: flatten it once.
const envLists = new WeakMap<NodeJS.ProcessEnv, string[]>();
function envList(env: NodeJS.ProcessEnv): string[] {
  let out = envLists.get(env);
  if (out === undefined) {
    out = [];
    for (const [name, value] of Object.entries(env)) if (value !== undefined) out.push(`${name}=${value}`);
    envLists.set(env, out);
  }
  return out;
}

/** Runs the compiler, in its sandbox when the job has one. */
export async function runCompiler(run: CompilerRun): Promise<CompilerOutcome> {
  if (run.sandbox === undefined) return spawnCompiler(run, run.argv);
  const { sandbox, cwd, binds, root } = run.sandbox;
  const command = await sandbox.command(run.argv, { env: run.env, cwd, binds, root });
  if (!command.ok) return { kind: 'exec-failed', reason: command.reason };
  return spawnCompiler(run, command.argv, command.limits, command.host);
}

/**
 * bwrap exits with its child's exit code, or 128 + the signal that killed it: the wait status the
 * client gets (STAT) is the compiler's again, a crash a signal rather than exit 139. (A compiler
 * that itself exits 129-192 reads as killed; no compiler does.) The core bit cannot be told.
 */
function compilerStatus(status: number): number {
  const code = (status >> 8) & 0xff;
  return (status & 0x7f) === 0 && code > 128 && code <= 128 + 64 ? code - 128 : status;
}

/**
 * How a started compiler is watched and ended: a child of ours (its pid: waitpid, its process
 * group killed), or a sandbox host's job (its status pipe and pidfd; the status is the
 * compiler's own, signal and core bit included, and SIGKILL to its pid 1 ends its pid namespace).
 */
interface Started {
  readonly raw: boolean;
  watch(done: ExitCallback, answer?: AnswerPlan): void;
  kill(): void;
  forgo(): void;
  /** After the exit: what the watch did not close. */
  release(): void;
}

/** The wait status of a process killed by SIGKILL. */
const SIGKILL_STATUS = os.constants.signals.SIGKILL;

function childStarted(pid: number): Started {
  return {
    raw: false,
    watch: (done, answer) => watch(pid, done, answer),
    kill: () => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    },
    forgo: () => native.forgo(pid),
    release: () => undefined,
  };
}

function hostStarted(job: HostJob): Started {
  let open = true;
  let killed = false;
  return {
    raw: true,
    // A job we killed has no pid 1 left to write its status: it reads as the SIGKILL a child's would.
    watch: (done, answer) => {
      native.watchStatus(job.statusFd, (waited, sent, rest) => done(killed && waited instanceof Error ? SIGKILL_STATUS : waited, sent, rest), answer);
    },
    kill: () => {
      if (!open) return;
      killed = true;
      native.pidfdKill(job.pidfd);
    },
    forgo: () => native.forgoStatus(job.statusFd),
    release: () => {
      if (!open) return;
      open = false;
      closeSync(job.pidfd);
      job.done();
    },
  };
}

/** Starts the compiler: in its sandbox host when it has one that takes the job, else as a child (bwrap, or the compiler itself). */
function start(run: CompilerRun, argv: readonly string[], files: CaptureFiles, limits?: SpawnLimits, host?: HostLaunch): Started {
  const priority = run.nice === 0 ? undefined : Math.min(19, os.getPriority(0) + run.nice);
  if (host !== undefined) {
    try {
      return hostStarted(host(envList(run.env), files.stdout, files.stderr, priority));
    } catch (error) {
      // The host may have started it (no answer in time): a second compiler on the same files never.
      if (jobMayRun(error)) throw error;
      // No host for this compiler (it cannot start, or refused the job): a bwrap of its own.
    }
  }
  const pid = native.spawn(argv[0]!, argv, envList(run.env), run.cwd, files.stdout, files.stderr, limits);
  if (priority !== undefined) {
    try {
      os.setPriority(pid, priority);
    } catch {
      // Not allowed to change priority (e.g. a negative --nice without privilege): run as is.
    }
  }
  return childStarted(pid);
}

function spawnCompiler(run: CompilerRun, argv: readonly string[], limits?: SpawnLimits, host?: HostLaunch): Promise<CompilerOutcome> {
  if (run.signal?.aborted === true) return Promise.resolve({ kind: 'aborted' });
  const files = run.captures ?? openCaptures(run.scratchDir ?? os.tmpdir());
  const { stdout: outFd, stderr: errFd } = files;
  // Files we made ourselves are closed once read; the caller's are the caller's to close.
  const release = (): void => {
    if (run.captures === undefined) files.close();
  };
  if (exitWatching === 'sigchld') listenForExits();
  let started: Started;
  try {
    started = start(run, argv, files, limits, host);
  } catch (error) {
    release();
    const e = error as Error & { errno?: number };
    if (e.errno === undefined) throw error;
    return Promise.resolve({ kind: 'exec-failed', reason: `${errnoNames.get(e.errno) ?? ''} ${e.message}`.trim() });
  }
  // bwrap's exit code stands for the compiler's signal (compilerStatus); a host's status is the compiler's own.
  const translate = run.sandbox !== undefined && !started.raw;
  return new Promise((resolve) => {
    let ending: 'timeout' | 'aborted' | undefined;
    // A job that ends early is not answered by the exit handler: the caller decides.
    const end = (why: 'timeout' | 'aborted'): void => {
      ending ??= why;
      if (run.answer !== undefined) started.forgo();
      started.kill();
    };
    const onAbort = (): void => end('aborted');
    const timer = run.lifetimeMs > 0 ? setTimeout(() => end('timeout'), run.lifetimeMs) : undefined;
    run.signal?.addEventListener('abort', onAbort, { once: true });
    const answer: AnswerPlan | undefined = run.answer === undefined ? undefined : [run.answer.socket, run.answer.version, outFd, errFd, run.answer.object, translate ? 1 : 0];
    started.watch((waited, sent = 0, rest) => {
      const status = !translate || waited instanceof Error ? waited : compilerStatus(waited);
      if (timer !== undefined) clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      started.release();
      try {
        if (ending === 'aborted') resolve({ kind: 'aborted' });
        else if (status instanceof Error) resolve({ kind: 'exec-failed', reason: `lost the compiler's exit status: ${status.message}` });
        else if (ending === 'timeout') resolve({ kind: 'timeout', stdout: captured(outFd), stderr: captured(errFd) });
        else if (sent > 0) resolve({ kind: 'answered', status, rest, sent });
        else if (sent < 0) resolve({ kind: 'unanswered', status, reason: `sending the answer failed: ${errnoNames.get(-sent) ?? `errno ${-sent}`}` });
        else resolve({ kind: 'exited', status, stdout: captured(outFd), stderr: captured(errFd) });
      } finally {
        release();
      }
    }, answer);
  });
}
