// The sandbox every compiler runs in (issue 21). An allowed client could otherwise make the
// compiler read any file the daemon's user can read: `-x c` with a source that #includes a
// server path (protocols 1/2), an absolute #include (protocol 3), the temp files of concurrent
// jobs in TMPDIR; the contents come back in the object or the diagnostics. C distccd does
// nothing about it; icecream uses a chroot, sccache-dist bubblewrap, and so do we.
//
// A compile runs as `bwrap OPTIONS -- COMPILER ARGS`:
//   - the spawn sets the resource limits (address space, CPU seconds, file size, processes) on
//     bwrap between fork and exec (src/native/spawn), and the compiler and its children inherit
//     them (an exec of prlimit before bwrap did this until it was measured at ~1 ms a job);
//   - bwrap (unprivileged: user namespaces, never setuid) gives it new user, pid, mount, ipc and
//     network namespaces (no network at all; see UNSHARE), kills it with its parent, and builds
//     its file system from nothing: the compiler's own directories read-only
//     (compiler_mounts.ts), a fresh /proc and a /dev of five device nodes (DEV), an empty size-capped tmpfs /tmp, and
//     the job's own files (binds chosen by the job: its input, output, .d, pump tree). No /home,
//     /root, /srv, /var, /etc, nor any other job's file exists in there.
//
// A daemon that serves many jobs runs them through a sandbox host per compiler instead
// (sandbox_host.ts): one bwrap, started at the compiler's first job, in which each job gets new
// mount and pid namespaces built from the same options as above; the network, ipc and user
// namespaces are the host's, shared by that compiler's jobs. The host builds the part of the
// root all its jobs share once (its template), and a job whose files lie in /tmp only adds its
// own. A job whose files lie outside the job directory, or whose host cannot start, runs in a
// bwrap of its own.
//
// A process that serves one job (--inetd, systemd Accept=yes) starts the host program outside
// bwrap ahead of its request (startAhead: `distkit-sandbox-host --own-namespaces`), which makes
// the same namespaces bwrap would (user, ipc, network, then mount and pid for the job) and builds
// the same root from the same options as a host's job; the host program's one-shot mode
// (`distkit-sandbox-host --job`, sandbox_one_shot.c) when that host fails; bwrap when the
// start-up check finds the host program refused here.
//
// Exports: Sandbox (verify, startAhead, command), SandboxLimits, SandboxOptions, Bind, SandboxCommand.
// A host ends with the daemon (bwrap --die-with-parent, and EOF on its socket).

import { spawnSync } from 'node:child_process';
import { readdirSync, realpathSync } from 'node:fs';
import os from 'node:os';
import { DistkitError, EXIT } from '../../errors';
import { resolveProgram } from '../compiler_probe';
import { findCompilerMounts, identity, wholeUsr, type CompilerMounts, type MountsMemory } from './compiler_mounts';
import { mountsMemory, probeKey, readProbe, writeProbe } from './probe_cache';
import { hostProgram, hostRefused, jobMayRun, SandboxHost, type HostJob } from './sandbox_host';

export type SandboxMode = 'auto' | 'required' | 'off';

/**
 * --unshare-all (with --unshare-net, see Sandbox.verify) but the uts and cgroup namespaces: a compiler cannot change the host's hostname
 * or cgroup from its own user namespace anyway, what it would read there is no secret, and
 * leaving them out lets systemd units forbid them (RestrictNamespaces=, an exposure of 1.1).
 * The user namespace is "try" as in --unshare-all: root needs none.
 * The network namespace stays, though it is ~1 ms of a job's CPU (and a kernel worker's to tear
 * down): a seccomp filter denying socket() would keep the job off the network as well, but in the
 * host's network namespace the job's own /proc/net would list the host's connections and unix
 * sockets, other clients' addresses among them.
 */
const UNSHARE = Object.freeze(['--unshare-user-try', '--unshare-ipc', '--unshare-pid']);

// Not --as-pid-1, though bwrap's reaper process costs a fork a job (~0.5-1 ms of CPU, measured):
// as pid 1 of its namespace the compiler would ignore every signal it has no handler for and did
// not get from a fault (kill -SEGV $$, abort's raise, SIGPIPE, SIGXFSZ), so a crash would read
// as exit 0 or an error return, not the wait status an unconfined compile gives.

/**
 * The /dev a compiler gets: the device nodes a compile may open (bound from the host's, as
 * bwrap's --dev does) and the /proc/self/fd links a wrapper script may use, in a /dev made in
 * bwrap's own root. Not --dev, whose tmpfs, devpts, /dev/shm, ptmx and tty a compile has no use for:
 * ~0.15 ms of a job's CPU more, measured (cgroup CPU of the two bwrap commands, interleaved).
 */
const DEV = Object.freeze([
  '--dir', '/dev',
  ...['null', 'zero', 'full', 'random', 'urandom'].flatMap((node) => ['--dev-bind', `/dev/${node}`, `/dev/${node}`]),
  ...['stdin', 'stdout', 'stderr'].flatMap((name, fd) => ['--symlink', `/proc/self/fd/${fd}`, `/dev/${name}`]),
  '--symlink', '/proc/self/fd', '/dev/fd',
]);

/** Whether this process's network namespace has no interface but lo (systemd's PrivateNetwork=). */
function onlyLoopback(): boolean {
  try {
    const names = readdirSync('/sys/class/net');
    return names.length === 1 && names[0] === 'lo';
  } catch {
    return false;
  }
}

export interface SandboxLimits {
  /** RLIMIT_AS of the compiler and each of its children, bytes. */
  readonly memoryBytes: number;
  /** RLIMIT_CPU, seconds: --job-lifetime, or an hour when that is 0. */
  readonly cpuSeconds: number;
  /** RLIMIT_FSIZE: the largest file a compile may write (object, stderr, any temp file). */
  readonly fileBytes: number;
  /** RLIMIT_NPROC (counted per user, as the kernel does). */
  readonly processes: number;
  /** Size of the tmpfs mounted on /tmp. */
  readonly tmpBytes: number;
}

/** A path of the job made visible inside the sandbox at `to`. */
export interface Bind {
  readonly from: string;
  readonly to: string;
  readonly writable?: boolean;
  /** Make `to` a symlink whose target is `from` instead. */
  readonly symlink?: boolean;
}

/** The resource limits as the spawn sets them on bwrap (src/native/spawn): bytes, seconds, bytes, processes. */
export interface SpawnLimits {
  readonly as: number;
  readonly cpu: number;
  readonly fsize: number;
  readonly nproc: number;
}

/** Starts the job in its compiler's sandbox host; throws (with errno) when the host cannot take it. */
export type HostLaunch = (env: readonly string[], stdoutFd: number, stderrFd: number, priority: number | undefined) => HostJob;

/** How to run a job: `argv` (a bwrap of its own), or `host` when it has one, `argv` if that throws. */
export type SandboxCommand =
  | { readonly ok: true; readonly argv: readonly string[]; readonly limits: SpawnLimits; readonly host?: HostLaunch }
  | { readonly ok: false; readonly reason: string };

/** A job's own files must lie in the directory its host has bound. */
const isWithin = (p: string, dir: string): boolean => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** Strictly below `dir`. */
const isBelow = (p: string, dir: string): boolean => p !== dir && isWithin(p, dir);

/** A compiler whose hosts build a template (#templateOptions): none of its mounts on or around /tmp, which each job mounts anew. */
const templated = (mounts: CompilerMounts): boolean =>
  [...mounts.dirs, ...mounts.links.map(([link]) => link)].every((p) => !isWithin(p, '/tmp') && !isWithin('/tmp', p));

/** Which host a job's compiler mounts and job root get. */
const hostKey = (mounts: CompilerMounts, root: string): string => `${root}\0${mounts.program ?? ''}\0${JSON.stringify([mounts.dirs, mounts.links])}`;

/** A compiler's host, or why it has none (and since when: a failed start is tried again later). */
type HostSlot = { readonly host: SandboxHost } | { readonly failed: string; readonly at: number };
const HOST_RETRY_MS = 60_000;
const { EAGAIN, ENOMEM, ENOSPC, EMSGSIZE, EBADMSG } = os.constants.errno;
/**
 * A host's refusals that pass (out of memory, processes or namespaces for now) or concern the one
 * job (its message too large or malformed: sandbox_host.c): that job alone runs in a bwrap. Any
 * other (EPERM, ENOSYS from a seccomp filter, EINVAL...) will refuse every job: the host serves none.
 */
const PASSING = new Set([EAGAIN, ENOMEM, ENOSPC, EMSGSIZE, EBADMSG]);

export interface SandboxOptions {
  /** The process serves one job (--inetd): /usr whole for a compiler there, and a bwrap per job. */
  readonly oneJob?: boolean;
  /** Run a daemon's jobs in a sandbox host per compiler (default: unless oneJob). */
  readonly hosts?: boolean;
  /** Told why a compiler's host could not start (its jobs then run in a bwrap each). */
  readonly onHostProblem?: (reason: string) => void;
}

export class Sandbox {
  readonly #bwrap: string;
  readonly #limits: SandboxLimits;
  readonly #spawnLimits: SpawnLimits;
  readonly #wholeUsr: boolean;
  /** Mount a fresh /proc: off when the service manager hides parts of the host's (see verify). */
  #proc = true;
  /** Unshare the network: off only where the daemon's own network is lo alone (see verify). */
  #net = true;
  /**
   * Run each job with the sandbox host program's one-shot mode (`distkit-sandbox-host --job`)
   * rather than bwrap: a process that serves one job (--inetd), when verify found it works here.
   */
  #oneShot = false;
  /** Where the compilers' mounts found by earlier processes are, and this one's go (--inetd; see verify). */
  #memory: MountsMemory | undefined;
  /** Run jobs in a sandbox host per compiler (not in a process that serves one job). */
  readonly #hosts: boolean;
  readonly #hostSlots = new Map<string, HostSlot>();
  /** The host program started ahead for this process's one job (startAhead), until that job takes it. */
  #ahead: SandboxHost | undefined;
  readonly #onHostProblem: ((reason: string) => void) | undefined;

  /**
   * `bwrap` is an absolute path (see locate). `oneJob`: the process serves one job
   * (--inetd), and a compiler in /usr gets /usr whole (compiler_mounts.ts wholeUsr).
   */
  constructor(programs: { readonly bwrap: string }, limits: SandboxLimits, options: SandboxOptions = {}) {
    this.#wholeUsr = options.oneJob === true;
    this.#hosts = options.hosts ?? options.oneJob !== true;
    this.#onHostProblem = options.onHostProblem;
    this.#bwrap = programs.bwrap;
    this.#limits = Object.freeze({ ...limits });
    this.#spawnLimits = Object.freeze({ as: limits.memoryBytes, cpu: limits.cpuSeconds, fsize: limits.fileBytes, nproc: limits.processes });
  }

  get bwrap(): string {
    return this.#bwrap;
  }

  get limits(): SandboxLimits {
    return this.#limits;
  }

  /**
   * Finds bwrap (a path, or a name searched in `searchPath`); throws DistkitError
   * 'sandbox-unavailable' when it is missing.
   */
  static locate(bwrap: string, searchPath: string, limits: SandboxLimits, options: SandboxOptions = {}): Sandbox {
    const bwrapPath = resolveProgram(bwrap, searchPath);
    if (bwrapPath === undefined) throw unavailable(`bubblewrap (${bwrap}) is not installed or not on PATH: install the bubblewrap package, or pass --bwrap PATH`);
    return new Sandbox({ bwrap: bwrapPath }, limits, options);
  }

  /**
   * Runs `true` in a sandbox built exactly as a compile's is (user namespace, /proc, /dev, the
   * tmpfs): the check at start-up, as the user the daemon serves as (`as`, when it starts as
   * root and drops to that user later). Synchronous: start-up only. `cacheDir`: a passed check is
   * remembered there for the next process in the same conditions (probe_cache.ts; --inetd), and
   * so are the compilers' mounts its jobs find.
   * Returns 'remembered' when a passed check was found there, else 'passed'.
   * Throws DistkitError 'sandbox-unavailable' with bwrap's own words when it fails.
   */
  verify(env: NodeJS.ProcessEnv, as?: { readonly uid: number; readonly gid: number }, options: { readonly cacheDir?: string } = {}): 'passed' | 'remembered' {
    const { cacheDir } = options;
    const key = cacheDir === undefined ? undefined
      : probeKey(this.#bwrap, [`as=${as?.uid ?? process.geteuid?.()}:${as?.gid ?? process.getegid?.()}`, `lo=${onlyLoopback()}`, `usr=${this.#wholeUsr}`, JSON.stringify(this.#limits),
        ...(this.#hosts ? [] : [`one-shot=${identity(hostProgram())}`])]);
    const known = key === undefined ? undefined : readProbe(cacheDir!, key);
    this.#memory = key === undefined ? undefined : mountsMemory(cacheDir!, key, as);
    if (known !== undefined) {
      this.#proc = known.proc;
      this.#net = known.net;
      this.#oneShot = !this.#hosts && known.oneShot === true;
      return 'remembered';
    }
    const program = resolveProgram('true', env['PATH'] ?? '/usr/bin:/bin');
    if (program === undefined) throw unavailable('no `true` program on PATH to test the sandbox with');
    // /usr whole when `true` lives there (no ldd: this check runs in every --inetd process).
    let mounts: CompilerMounts;
    if (realpathSync(program).startsWith('/usr/')) mounts = wholeUsr(program);
    else {
      const ldd = spawnSync('ldd', [program], { env, encoding: 'utf8' });
      const libs = `${ldd.stdout ?? ''}`.match(/\/\S+/g) ?? [];
      mounts = { program, dirs: [...new Set([program, ...libs].map((p) => p.slice(0, p.lastIndexOf('/')) || '/'))], links: [] };
    }
    // A kernel refuses a new /proc where parts of the host's are covered (systemd's
    // ProtectKernelTunables=, a container's masked paths): jobs then get none, which compilers
    // do not need. A network namespace of their own may be forbidden (RestrictNamespaces=,
    // RestrictAddressFamilies= without AF_NETLINK for its loopback): accepted only when the
    // daemon's own has no interface but lo (PrivateNetwork=), which jobs then share.
    const variants = [{ proc: true, net: true }, { proc: false, net: true }];
    if (onlyLoopback()) variants.push({ proc: true, net: false }, { proc: false, net: false });
    // A process that serves one job tries the host program's one-shot mode first (no bwrap, see
    // #argv): a kernel or service manager that refuses it what bwrap is allowed (unprivileged
    // user namespaces for bwrap alone, as an AppArmor profile can) leaves its jobs to bwrap.
    let result: ReturnType<typeof spawnSync> | undefined;
    for (const variant of variants) {
      this.#proc = variant.proc;
      this.#net = variant.net;
      for (const oneShot of this.#hosts ? [false] : [true, false]) {
        this.#oneShot = oneShot;
        const argv = this.#argv(this.#options(mounts, { cwd: '/', binds: [] }), [program]);
        result = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 20_000, uid: as?.uid, gid: as?.gid });
        if (result.status === 0) break;
      }
      if (result?.error !== undefined || result?.status === 0) break;
    }
    if (result === undefined || result.error !== undefined) throw unavailable(`cannot run ${this.#bwrap}: ${result?.error?.message ?? ''}`);
    if (result.status !== 0) {
      const said = `${result.stderr ?? ''}`.trim().split('\n').slice(-1)[0] ?? '';
      throw unavailable(`${this.#bwrap} cannot build a sandbox here (exit ${result.status ?? result.signal}${said === '' ? '' : `: ${said}`}); user namespaces may be off (sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces) or forbidden by the service manager (RestrictNamespaces=)`);
    }
    if (key !== undefined) writeProbe(cacheDir!, key, { proc: this.#proc, net: this.#net, oneShot: this.#oneShot });
    return 'passed';
  }

  /**
   * In a process that serves one job (--inetd) whose jobs run in the one-shot mode: starts the
   * host program now, outside bwrap (`distkit-sandbox-host --own-namespaces`: the one-shot's
   * user, ipc and network namespaces), so its start overlaps the reading of the request; the job
   * is handed to it (command), and its pid 1 builds the same root from the same options as a
   * one-shot's. A host that fails leaves the job to the one-shot mode. It ends with this process
   * (EOF on its socket, and PDEATHSIG), whether a job came or not. `scratchDir`: where it may
   * say why it could not start (TMPDIR).
   */
  startAhead(scratchDir: string): void {
    if (this.#hosts || !this.#oneShot || this.#ahead !== undefined) return;
    try {
      this.#ahead = SandboxHost.launch([hostProgram(), '--own-namespaces', this.#net ? '1' : '0'], [], scratchDir, { nproc: this.#limits.processes },
        (why) => this.#onHostProblem?.(`the sandbox host started ahead was ${why}`));
    } catch (error) {
      this.#onHostProblem?.(`the sandbox host cannot start ahead, the job runs in the one-shot mode: ${(error as Error).message}`);
    }
  }

  /** How jobs run: in a sandbox host per compiler, a bwrap each, or the host program's one-shot mode each. */
  get runner(): 'host-per-compiler' | 'bwrap-each' | 'one-shot-each' {
    return this.#hosts ? 'host-per-compiler' : this.#oneShot ? 'one-shot-each' : 'bwrap-each';
  }

  /** Whether jobs get a network namespace of their own (else the daemon's, which has only lo). */
  get network(): boolean {
    return this.#net;
  }

  /** Whether jobs get a /proc of their own (verify may find they cannot). */
  get proc(): boolean {
    return this.#proc;
  }

  /**
   * The command that runs `argv` (a compiler and its arguments, as the job would run it) in the
   * sandbox, with `cwd` inside it and the job's `binds`; not ok when PATH has no such compiler
   * (the job answers that as an exec failure, as without the sandbox).
   */
  async command(argv: readonly string[], job: { readonly env: NodeJS.ProcessEnv; readonly cwd: string; readonly binds: readonly Bind[]; readonly root?: string }): Promise<SandboxCommand> {
    const mounts = await findCompilerMounts(argv[0]!, job.env, { wholeUsr: this.#wholeUsr, memory: this.#memory });
    if (mounts.program === undefined) return { ok: false, reason: `ENOENT ${argv[0]} is not on the compiler PATH` };
    const options = this.#options(mounts, job);
    const command = { ok: true as const, argv: this.#argv(options, argv), limits: this.#spawnLimits };
    const ahead = this.#ahead;
    if (ahead !== undefined) {
      this.#ahead = undefined; // one job
      const limits = this.#spawnLimits;
      // Closed once it has the job: it exits when that job has ended. A refusal leaves the job to `argv`, and is told.
      const host: HostLaunch = (env, stdoutFd, stderrFd, priority) => {
        try {
          return ahead.run({ priority, limits, env, options, argv }, stdoutFd, stderrFd);
        } catch (error) {
          const fallback = jobMayRun(error) ? 'the job fails' : 'the job runs in the one-shot mode';
          this.#onHostProblem?.(`the sandbox host started ahead could not take the job, ${fallback}: ${(error as Error).message}`);
          throw error;
        } finally {
          ahead.close();
        }
      };
      return { ...command, host };
    }
    const { root } = job;
    if (!this.#hosts || root === undefined || !job.binds.every((b) => b.symlink === true || isWithin(b.from, root))) return command;
    const hostOptions = this.#onTemplate(mounts, job) ? this.#jobOptions(job) : options;
    const limits = this.#spawnLimits;
    const key = hostKey(mounts, root);
    const host: HostLaunch = (env, stdoutFd, stderrFd, priority) => {
      // A host found gone (killed, crashed) is started again, once, for this job; one that refuses
      // jobs (its clone forbidden) serves none, as one that cannot start.
      // A job the host may have started (jobMayRun) is not tried again: it fails.
      for (let attempt = 0; ; attempt++) {
        const started = this.#host(key, mounts, root, env);
        if (typeof started === 'string') throw Object.assign(new Error(started), { errno: 0 });
        try {
          return started.run({ priority, limits, env, options: hostOptions, argv }, stdoutFd, stderrFd);
        } catch (error) {
          const errno = (error as { errno?: number }).errno;
          if (started.alive && hostRefused(error) && !PASSING.has(errno ?? 0)) this.#hostFailed(key, mounts, `it cannot clone a job: ${(error as Error).message}`);
          if (started.alive || attempt > 0 || jobMayRun(error)) throw error;
        }
      }
    };
    return { ...command, host };
  }

  /** The running host for these mounts and job root, started if need be; or why there is none. */
  #host(key: string, mounts: CompilerMounts, root: string, env: readonly string[]): SandboxHost | string {
    const slot = this.#hostSlots.get(key);
    if (slot !== undefined && 'host' in slot && slot.host.alive) return slot.host;
    if (slot !== undefined && 'failed' in slot && Date.now() - slot.at < HOST_RETRY_MS) return slot.failed;
    try {
      const host = SandboxHost.start(this.#hostArgv(mounts, root), env, root, { nproc: this.#limits.processes }, (why) => this.#onHostProblem?.(`the sandbox host of ${mounts.program ?? '?'} was ${why}`));
      this.#hostSlots.set(key, { host });
      return host;
    } catch (error) {
      return this.#hostFailed(key, mounts, `it cannot start: ${(error as Error).message}`);
    }
  }

  /** Records (and tells) why these mounts' host serves no job, closing it if it runs; the reason. */
  #hostFailed(key: string, mounts: CompilerMounts, why: string): string {
    const slot = this.#hostSlots.get(key);
    if (slot !== undefined && 'host' in slot) slot.host.close();
    const failed = `the sandbox host of ${mounts.program ?? '?'} serves no job, its jobs run in a bwrap each: ${why}`;
    this.#hostSlots.set(key, { failed, at: Date.now() });
    this.#onHostProblem?.(failed);
    return failed;
  }

  /**
   * The host's bwrap: the namespaces a job's bwrap gets but mount and pid, which each job gets
   * anew inside; CAP_SYS_ADMIN, CAP_SETPCAP and CAP_SYS_CHROOT in its user namespace to build them; the
   * compiler's directories, /dev's nodes and /proc as a job sees them (the sources of the job's
   * mounts), the job root read-write (the sources of the job's own), the host program, and the
   * empty /newroot where each job's root is built.
   */
  #hostArgv(mounts: CompilerMounts, root: string): string[] {
    const out = [...this.#namespaces(), '--cap-add', 'CAP_SYS_ADMIN', '--cap-add', 'CAP_SETPCAP', '--cap-add', 'CAP_SYS_CHROOT'];
    // The job root under the compiler's directories when one of them holds it, else beneath them.
    const rootInside = mounts.dirs.some((dir) => isWithin(root, dir));
    if (!rootInside) out.push('--bind', root, root);
    for (const dir of mounts.dirs) out.push('--ro-bind', dir, dir);
    if (rootInside) out.push('--bind', root, root);
    for (const [link, target] of mounts.links) out.push('--symlink', target, link);
    if (this.#proc) out.push('--proc', '/proc');
    out.push(...DEV, '--ro-bind', hostProgram(), '/sandbox-host', '--dir', '/newroot', '--remount-ro', '/');
    if (templated(mounts)) out.push('--setenv', 'DISTKIT_SANDBOX_TEMPLATE', Buffer.from(`${this.#templateOptions(mounts).join('\0')}\0`).toString('hex'));
    out.push('--', '/sandbox-host');
    return out;
  }

  /**
   * The part of every job's root its host builds once (sandbox_job.c build_template): the
   * compiler's directories and links, /dev, the mount points of /proc and /tmp, all read-only.
   * A job on it adds its /tmp, /proc and own files (#jobOptions): the root it gets is the one
   * #options builds from nothing, for ~20 mounts and mkdirs, and a tmpfs, less a job.
   */
  #templateOptions(mounts: CompilerMounts): string[] {
    const out = this.#compilerOptions(mounts);
    if (this.#proc) out.push('--dir', '/proc');
    out.push(...DEV, '--dir', '/tmp', '--remount-ro', '/');
    return out;
  }

  /** A job's own part of its root on its host's template: what #options adds to #templateOptions. */
  #jobOptions(job: { readonly cwd: string; readonly binds: readonly Bind[] }): string[] {
    const out = ['--on-template', ...this.#tmpOptions()];
    if (this.#proc) out.push('--proc', '/proc');
    return [...out, ...bindOptions(job.binds), ...workOptions(job.cwd)];
  }

  /**
   * Whether a job's root can be its host's template and its own mounts: all of them, and its
   * working directory, on its own /tmp (the template's root is read-only and shared by the
   * host's jobs: no mount point of a job's may be made there, where the next job would see it).
   */
  #onTemplate(mounts: CompilerMounts, job: { readonly cwd: string; readonly binds: readonly Bind[] }): boolean {
    return templated(mounts) && isBelow(job.cwd, '/tmp') && job.binds.every((b) => isBelow(b.to, '/tmp'));
  }

  /** The paths the sandbox of `compiler` mounts itself (its directories and links, /proc, /dev, /tmp). */
  async occupied(compiler: string, env: NodeJS.ProcessEnv): Promise<string[]> {
    const mounts = await findCompilerMounts(compiler, env, { wholeUsr: this.#wholeUsr, memory: this.#memory });
    return [...mounts.dirs, ...mounts.links.map(([link]) => link), '/proc', '/dev', '/tmp'];
  }

  /**
   * A job's own sandbox: bwrap, or the host program's one-shot mode (sandbox_one_shot.c one_shot),
   * which builds the same namespaces and root from the same options, for ~2.5 ms of a job's CPU
   * and ~4 ms of its wall time less, measured (bwrap's dynamically linked start, its reading of
   * /proc/self/mountinfo for every bind, its loopback set-up and its unmount of the old root).
   */
  #argv(options: readonly string[], argv: readonly string[]): string[] {
    if (this.#oneShot) return [hostProgram(), '--job', this.#net ? '1' : '0', ...options, '--', ...argv];
    return [...this.#namespaces(), ...options, '--', ...argv];
  }

  /** bwrap and its namespaces, for a job's bwrap and a host's alike (the host keeps mount and pid for its jobs to make). */
  #namespaces(): string[] {
    return [this.#bwrap, ...UNSHARE, ...(this.#net ? ['--unshare-net'] : []), '--die-with-parent'];
  }

  /** The bwrap options that build a job's file system, for its bwrap or its host alike. */
  #options(mounts: CompilerMounts, job: { readonly cwd: string; readonly binds: readonly Bind[] }): string[] {
    // The tmpfs first: a compiler directory under /tmp (a test's, a user's toolchain) stays visible.
    const out = [...this.#tmpOptions(), ...this.#compilerOptions(mounts)];
    if (this.#proc) out.push('--proc', '/proc');
    out.push(...DEV, ...bindOptions(job.binds));
    // The root bwrap builds is a tmpfs without a size cap: read-only once built, so a job writes
    // only to its own bound files and the capped /tmp, and cannot fill memory with files.
    return [...out, '--remount-ro', '/', ...workOptions(job.cwd)];
  }

  /** A job's own /tmp: a tmpfs of the capped size. */
  #tmpOptions(): string[] {
    return ['--size', String(this.#limits.tmpBytes), '--tmpfs', '/tmp'];
  }

  /** The compiler's directories, read-only, and its links. */
  #compilerOptions(mounts: CompilerMounts): string[] {
    const out: string[] = [];
    for (const dir of mounts.dirs) out.push('--ro-bind', dir, dir);
    for (const [link, target] of mounts.links) out.push('--symlink', target, link);
    return out;
  }
}

/** A job's own files and links. */
function bindOptions(binds: readonly Bind[]): string[] {
  return binds.flatMap((bind) => [bind.symlink === true ? '--symlink' : bind.writable === true ? '--bind' : '--ro-bind', bind.from, bind.to]);
}

/** Where a job works, and its TMPDIR. */
function workOptions(cwd: string): string[] {
  return ['--chdir', cwd, '--setenv', 'TMPDIR', '/tmp'];
}

function unavailable(message: string): DistkitError {
  return new DistkitError('sandbox-unavailable', message, { exitCode: EXIT.SETUID_FAILED });
}
