// One long-lived sandbox per compiler that starts each job's compiler in a namespace of its own
// (src/native/spawn/sandbox_host.c is the process; this starts it and hands it jobs).
//
// A bwrap per job costs ~7 ms of a trivial job's wall time, most of it waiting (measured: the
// network namespace, ~2-3 ms of it, its loopback set up and torn down; bwrap's exec, its user
// namespace and its monitor process the rest), past the 5 ms a job may spend on its sandbox. The
// host pays for those once: it runs in bwrap with user, network, ipc and pid namespaces, the
// compiler's directories read-only, /dev's nodes, a /proc and the daemon's job directory (TMPDIR)
// read-write, and nothing else, keeping only CAP_SYS_ADMIN, CAP_SETPCAP and CAP_SYS_CHROOT in its own user
// namespace. Per job it clones a pid 1 in a new mount and pid namespace, which builds the job's
// root from the same bwrap options a per-job bwrap would get (sandbox.ts), pivots into it (the
// job root and every other job's files are left behind), and runs the compiler without any
// capability, with the job's limits; the compiler's raw wait status comes back on a pipe.
//
// A host that cannot start (bwrap refused the capabilities, a kernel before 5.3) or take a job
// (its clone forbidden by a seccomp filter) leaves its compiler's jobs to a bwrap each, as
// before; distccd logs why (Sandbox onHostProblem), and the host is tried again a minute later.
// The round trips block the event loop, so they are short (START_TIMEOUT_MS, RUN_TIMEOUT_MS): a
// host slower than that is retired (EOF on its socket; it exits once its running jobs have
// ended, and they report on their own status pipes), never killed with jobs in it.
//
// Exports: SandboxHost (start, run, retire, close), hostProgram(), encodeJob(), jobMayRun(), hostRefused()

import { closeSync, constants as C, openSync, readSync } from 'node:fs';
import os from 'node:os';
import * as native from 'distkit-spawn';

/**
 * How long the host may take to come up (bwrap, once per compiler), and to take a job (a clone
 * round trip: milliseconds). Both block the event loop, so both are short: a host slower than
 * that is retired, not waited for (see retire).
 */
const START_TIMEOUT_MS = 2_000;
const RUN_TIMEOUT_MS = 1_000;

/** The host's executable, built with the addon (binding.gyp target distkit-sandbox-host). */
export function hostProgram(): string {
  return native.hostProgram();
}

/** A started job: its status pipe (for watchStatus), its pidfd (kills the whole job), and done() once it has ended. */
export interface HostJob {
  readonly statusFd: number;
  readonly pidfd: number;
  done(): void;
}

/** The host's own refusal of a job (its errno: its clone failed, or the message was bad). */
export function hostRefused(error: unknown): boolean {
  return (error as { fromHost?: boolean }).fromHost === true;
}

/**
 * A job the host was sent but did not answer for (no answer in time, or a broken one): it may be
 * running, on the job's files, so it must not be run again elsewhere; the job fails instead.
 */
export function jobMayRun(error: unknown): boolean {
  return (error as { mayRun?: boolean }).mayRun === true;
}

/** A job for the host: the strings sandbox_host.c reads (limits, environment, bwrap options, argv). */
export interface HostRequest {
  /** The compiler's priority (absolute), or undefined to leave it. */
  readonly priority?: number;
  readonly limits: { readonly as: number; readonly cpu: number; readonly fsize: number; readonly nproc: number };
  readonly env: readonly string[];
  /** bwrap options after the namespace flags: mounts, --chdir, --setenv. */
  readonly options: readonly string[];
  readonly argv: readonly string[];
}

/**
 * The job's message: its strings, each ended by a NUL (the host splits on NUL). A string with a
 * NUL of its own would shift every field after it (an argument read as a bwrap option): refused.
 */
export function encodeJob(request: HostRequest): Buffer {
  const { limits } = request;
  const strings = [request.priority === undefined ? '' : String(request.priority), String(limits.as), String(limits.cpu), String(limits.fsize), String(limits.nproc),
    String(request.env.length), ...request.env, ...request.options, '--', ...request.argv];
  for (const s of strings) if (s.includes('\0')) throw Object.assign(new Error(`a NUL in a sandbox host job's string: ${JSON.stringify(s)}`), { errno: os.constants.errno.EINVAL });
  return Buffer.from(`${strings.join('\0')}\0`);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** What bwrap wrote to `fd` (a start that failed), last line. */
function lastLine(fd: number): string {
  const buf = Buffer.alloc(4096);
  let n = 0;
  try {
    n = readSync(fd, buf, 0, buf.length, 0);
  } catch {
    return '';
  }
  return buf.subarray(0, n).toString('utf8').trim().split('\n').slice(-1)[0] ?? '';
}

export class SandboxHost {
  readonly #bwrapPid: number;
  #control: number;
  /** Jobs started and not yet done(): a retired host's bwrap is killed once they are none. */
  #jobs = 0;
  #bwrapGone = false;
  /** Where bwrap (or the host program) says why it could not start, until the host has said it is ready (#greet); -1 after. */
  #errFd: number;
  readonly #onProblem: (why: string) => void;

  /** Whether the native watch reaps bwrap (else #bury does, when the host is done). */
  #watched = false;

  private constructor(bwrapPid: number, control: number, errFd: number, onProblem: (why: string) => void) {
    this.#bwrapPid = bwrapPid;
    this.#control = control;
    this.#errFd = errFd;
    this.#onProblem = onProblem;
    // A host that dies (killed, crashed) is reaped and known dead at once, not at its next job.
    try {
      this.#watched = native.watch(bwrapPid, (status) => this.#exited(status));
    } catch {
      // No pidfd for it (EMFILE): reaped when the host is done, as before.
    }
  }

  #exited(status: number | Error): void {
    this.#bwrapGone = true;
    const said = this.#errFd >= 0 ? lastLine(this.#errFd) : ''; // a launched host that never said it was ready
    this.#dropErr();
    if (this.#control < 0) return; // retired: its end was ours to expect
    closeQuietly(this.#control);
    this.#control = -1;
    const how = status instanceof Error ? status.message : (status & 0x7f) === 0 ? `exit ${(status >> 8) & 0xff}` : `signal ${status & 0x7f}`;
    this.#onProblem(`gone (its bwrap ended: ${how}${said === '' ? '' : `: ${said}`}), its next job starts a new one`);
  }

  /**
   * Starts `argv` (bwrap ... -- the host program) with the host's socket as its fd 3 and waits
   * until the host says it is ready. Throws an Error saying why it could not (bwrap's last words).
   * `onProblem` is told when the host is retired or its bwrap exits on its own. `limits`: set on
   * bwrap (RLIMIT_NPROC: every compiler's processes then count against the daemon user's one
   * limit, as with a bwrap per job, and not a limit per host).
   */
  static start(argv: readonly string[], env: readonly string[], scratchDir: string, limits: native.Limits | undefined, onProblem: (why: string) => void): SandboxHost {
    const host = SandboxHost.launch(argv, env, scratchDir, limits, onProblem);
    host.#greet();
    return host;
  }

  /**
   * Starts `argv` as start does, without waiting: its first job waits for it to be ready (and
   * throws, as start would, when it never is). For a process that serves one job (--inetd): the
   * host comes up while the request is still being read.
   */
  static launch(argv: readonly string[], env: readonly string[], scratchDir: string, limits: native.Limits | undefined, onProblem: (why: string) => void): SandboxHost {
    const [control, hostEnd] = native.hostChannel();
    const out = openSync('/dev/null', C.O_WRONLY);
    let err: number;
    try {
      err = openSync(scratchDir, C.O_RDWR | 0o20000000 | C.O_DIRECTORY, 0o600); // O_TMPFILE: bwrap's complaint, if any
    } catch {
      err = openSync('/dev/null', C.O_WRONLY);
    }
    let pid: number;
    try {
      pid = native.spawn(argv[0]!, argv, env, '/', out, err, limits, hostEnd);
    } catch (error) {
      for (const fd of [control, hostEnd, out, err]) closeQuietly(fd);
      throw error;
    }
    closeQuietly(hostEnd);
    closeQuietly(out);
    return new SandboxHost(pid, control, err, onProblem);
  }

  #dropErr(): void {
    if (this.#errFd >= 0) closeQuietly(this.#errFd);
    this.#errFd = -1;
  }

  /** Waits until the host says it is ready (once); throws why it is not, the host buried. */
  #greet(): void {
    const err = this.#errFd;
    if (err < 0) return;
    this.#errFd = -1;
    try {
      const word = native.hostReply(this.#control, START_TIMEOUT_MS);
      if (word !== 0) throw new Error(`it answered ${word}`);
    } catch (error) {
      const said = lastLine(err);
      closeQuietly(this.#control);
      this.#control = -1;
      this.#end();
      throw new Error(`${(error as Error).message}${said === '' ? '' : `: ${said}`}`);
    } finally {
      closeQuietly(err);
    }
  }

  /** Kills bwrap (and so the host) and reaps it, without blocking: it is our child. */
  static #bury(pid: number): void {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    const reap = (): boolean => {
      try {
        return native.reap(pid) !== undefined;
      } catch {
        return true; // ECHILD: nothing left to reap
      }
    };
    if (!reap()) setTimeout(reap, 100).unref();
  }

  get alive(): boolean {
    return this.#control >= 0;
  }

  /**
   * Starts one job with its stdout and stderr files. Throws with `errno`: the job was not sent
   * (EPIPE: the host is gone, and retired here), the host refused it (`fromHost`: EPERM when its
   * clone is forbidden), or no answer came (jobMayRun: the host is retired, the job must fail).
   */
  run(request: HostRequest, stdoutFd: number, stderrFd: number): HostJob {
    if (this.#control < 0) throw Object.assign(new Error('the sandbox host is closed'), { errno: 32 });
    this.#greet(); // a launched host's first job: not refused by the host (no errno), so it may go elsewhere
    const message = encodeJob(request);
    const [statusFd, statusWrite] = native.statusPipe();
    try {
      const pidfd = native.hostRun(this.#control, message, stdoutFd, stderrFd, statusWrite, RUN_TIMEOUT_MS);
      this.#jobs++;
      let open = true;
      return { statusFd, pidfd, done: () => {
        if (!open) return;
        open = false;
        this.#jobs--;
        if (this.#control < 0 && this.#jobs === 0) this.#end();
      } };
    } catch (error) {
      closeQuietly(statusFd);
      const e = error as Error & { errno?: number; syscall?: string };
      if (e.syscall === 'clone') throw Object.assign(e, { fromHost: true });
      if (e.syscall === 'recvmsg') {
        this.retire(`it did not answer for a job in ${RUN_TIMEOUT_MS} ms (${e.message}); that job fails`);
        throw Object.assign(e, { mayRun: true });
      }
      // Not sent: gone (EPIPE, ECONNRESET), or the message refused (the job may go elsewhere).
      if (e.errno === 32 || e.errno === 104) this.retire(`it is gone (${e.message})`);
      throw e;
    } finally {
      closeQuietly(statusWrite);
    }
  }

  /**
   * Sends the host no more jobs: EOF on its socket, on which it waits for its running jobs and
   * exits (a stuck one is killed once those jobs are done: they report on their own pipes).
   */
  retire(why: string): void {
    if (this.#control < 0) return;
    this.close();
    this.#onProblem(`retired, its next job starts a new one: ${why}`);
  }

  /** The same as retire, unlogged: for the daemon's own reasons, which it logs (a host that refuses jobs). */
  close(): void {
    this.#dropErr();
    if (this.#control < 0) return;
    closeQuietly(this.#control);
    this.#control = -1;
    if (this.#jobs === 0) this.#end();
  }

  #end(): void {
    if (this.#bwrapGone) return;
    if (!this.#watched) {
      SandboxHost.#bury(this.#bwrapPid);
      return;
    }
    try {
      process.kill(this.#bwrapPid, 'SIGKILL'); // the watch reaps it
    } catch {
      // already gone
    }
  }
}
