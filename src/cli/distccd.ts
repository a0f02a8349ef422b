#!/usr/bin/env node
// distccd: the distcc compile server. Parses the options into one frozen config, builds the
// compile engine (access list, compiler policy, job slots, stats) and hands its connection
// handler to the activation layer, which decides how connections arrive (standalone, systemd,
// inetd, ssh pipes). Exit codes are distcc's (EXIT in ../errors, from src/exitcode.h).
//
// Only the options are loaded up front: --help and --version need nothing else, and the process
// that starts a detaching daemon (which then does all the serving) needs no compile engine. The
// rest is required where a step first needs it. The startup snapshot (scripts/snapshot.ts) still
// holds every module, loaded, for the process per job of inetd mode.

import fs from 'node:fs';
import type net from 'node:net';
import type { ConnectionHandler, ListenSpec, ModeDecision, RunningService, ServiceOptions } from '../activation/index';
import type { JobObserver } from '../compile/job_observer';
import type { RootLogger } from '../log/index';
import type { AccessList } from '../compile/access';
import type { CompilerPolicy } from '../compile/allowlist';
import type { JobSettings } from '../compile/job';
import type { ObjectCache } from '../compile/object_cache/object_cache';
import type { Sandbox } from '../compile/sandbox/sandbox';
import { DistkitError, EXIT, UsageError } from '../errors';
import { helpText, parseDistccdArgs, versionText, type DistccdConfig } from './distccd_options';
import { zeroconfPublisher } from './distccd_zeroconf';

/* eslint-disable @typescript-eslint/no-require-imports -- required where first needed: see above */

/** Connections served at once per --jobs slot, and at least: clients send DOTI only after their cpp. */
const CONNECTIONS_PER_JOB = 4;
const MIN_CONNECTIONS = 16;

function tmpDirOf(env: NodeJS.ProcessEnv): string {
  const dir = env['TMPDIR'] !== undefined && env['TMPDIR'] !== '' ? env['TMPDIR'] : '/tmp';
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    throw new DistkitError('bad-tmpdir', `TMPDIR ${dir} is not a writable directory (${(error as NodeJS.ErrnoException).code}): set TMPDIR to one`, { exitCode: EXIT.BAD_ARGUMENTS });
  }
  return dir;
}

function runningAsRoot(): boolean {
  return process.getuid?.() === 0 || process.geteuid?.() === 0;
}

/**
 * Who a root start without --user becomes. C distccd never runs compilers as root: it takes the
 * distcc account, else nobody. distccd, the account Debian's distcc package and this package's
 * sysusers entry make, is tried first: looking up a name that does not exist can cost several ms
 * (NSS modules such as systemd's userdb), paid by every job in --inetd mode. `--user root` is the
 * only way to stay root, and it is logged as such.
 */
let defaultName: string | undefined;

function defaultUser(): string | undefined {
  if (!runningAsRoot()) return undefined;
  if (defaultName !== undefined) return defaultName;
  const { resolveUser } = require('../activation/privileges') as typeof import('../activation/privileges');
  for (const name of ['distccd', 'distcc', 'nobody']) {
    try {
      // resolveUser keeps the account for the privilege drop and the sandbox's check, which ask again.
      defaultName = resolveUser(name).name;
      return defaultName;
    } catch {
      // No such account here: try the next.
    }
  }
  throw new DistkitError('no-user', 'Started as root, and there is no distccd, distcc or nobody account to run as: pass --user');
}

function listenSpecs(config: DistccdConfig): ListenSpec[] {
  const hosts = config.listen.length > 0 ? config.listen : ['0.0.0.0'];
  const specs: ListenSpec[] = hosts.map((host) => ({ kind: 'tcp', host: host.replace(/^\[(.*)\]$/, '$1'), port: config.port, name: 'main' }));
  if (config.stats) specs.push(...hosts.map((host): ListenSpec => ({ kind: 'tcp', host: host.replace(/^\[(.*)\]$/, '$1'), port: config.statsPort, name: 'stats' })));
  return specs;
}

/**
 * DISTCC_TCP_DEFER_ACCEPT, read as C's dcc_getenv_bool with default on: "0" turns it off, "1"
 * on, anything else (or nothing) leaves the default.
 */
function deferAcceptWanted(env: NodeJS.ProcessEnv): boolean {
  return env['DISTCC_TCP_DEFER_ACCEPT'] !== '0';
}

/** As C distccd: a listener that cannot defer accept still serves, with a warning. */
function setDeferAccept(log: RootLogger, server: net.Server, address: string): void {
  const { deferAccept } = require('../activation/defer_accept') as typeof import('../activation/defer_accept');
  try {
    deferAccept(server, 1);
    log.debug('TCP_DEFER_ACCEPT set', { on: address });
  } catch (error) {
    log.warning('failed to set TCP_DEFER_ACCEPT', { on: address, error: (error as Error).message });
  }
}

/** Set once logging is configured: start-up failures then reach the log file or syslog too. */
let startLog: RootLogger | undefined;
/** True when those log lines already go to stderr (configureLogging's choice). */
let logsToStderr = false;

/** The root logger, its sinks attached as the options and the mode ask. */
function startLogging(config: DistccdConfig, decision: ModeDecision): RootLogger {
  const { createLogger, configureLogging } = require('../log/index') as typeof import('../log/index');
  const log = createLogger('distccd');
  startLog = log;
  logsToStderr = config.logStderr || (config.logFile === undefined && decision.kind === 'standalone' && !config.detach);
  configureLogging(log, { level: config.logLevel, file: config.logFile, stderr: config.logStderr || undefined, remote: config.logRemote, decision, detach: config.detach && decision.kind === 'standalone' });
  return log;
}

/** --allow and --allow-private as an access list; a daemon serving many peers must have one. */
async function accessListOf(config: DistccdConfig, inetd: boolean): Promise<AccessList | undefined> {
  if (!inetd && config.allow.length === 0 && !config.allowPrivate) {
    throw new DistkitError(
      'no-allow',
      'distccd refuses to serve the whole network: give --allow IP[/BITS] (repeatable) or --allow-private (10/8 172.16/12 192.168/16 127/8 fe80::/10 fc00::/7 ::1)',
      { exitCode: EXIT.BAD_ARGUMENTS },
    );
  }
  if (config.allow.length === 0 && !config.allowPrivate) return undefined;
  const { buildAccessList } = require('../compile/access') as typeof import('../compile/access');
  return buildAccessList(config.allow, { allowPrivate: config.allowPrivate });
}

/** Which compilers may run (CVE-2004-2687): DISTCC_CMDLIST, else the masquerade directory, which must exist. */
async function compilerPolicyOf(config: DistccdConfig, log: RootLogger): Promise<CompilerPolicy> {
  const { commandListFromEnv, readCommandList } = require('../compile/allowlist') as typeof import('../compile/allowlist');
  let commandList: CompilerPolicy['commandList'];
  try {
    commandList = commandListFromEnv(process.env);
  } catch (error) {
    throw new UsageError((error as Error).message, { exitCode: EXIT.BAD_ARGUMENTS });
  }
  if (commandList !== undefined) {
    const { file, numWords } = commandList;
    await readCommandList(file).then(
      (lines) => log.info('cmdlist', { file, commands: lines.length, words: numWords }),
      (error: Error) => log.warning(`${error.message}`),
    );
  } else if (!config.insecure && !fs.existsSync(config.compilerDir)) {
    throw new DistkitError(
      'no-compiler-dir',
      `compiler directory ${config.compilerDir} does not exist: install distcc's masquerade links (update-distcc-symlinks), pass --compiler-dir DIR, or set DISTCC_CMDLIST`,
      { exitCode: EXIT.COMPILER_MISSING },
    );
  }
  return { commandList, insecure: config.insecure, masqueradeDir: config.compilerDir };
}

/**
 * The sandbox every compiler runs in (--sandbox, issue 21), checked by running one as the user
 * that will serve: `required` fails the start (EXIT.SETUID_FAILED, as C distccd when it cannot
 * set up the identity it was asked for), `auto` says loudly that compilers run unconfined.
 */
function sandboxOf(config: DistccdConfig, log: RootLogger, inetd: boolean): { readonly sandbox: Sandbox | undefined; readonly say: () => void } {
  const { mode } = config.sandbox;
  if (mode === 'off') return { sandbox: undefined, say: () => log.notice('sandbox off (--sandbox=off): compilers can read every file the daemon\'s user can') };
  const { Sandbox } = require('../compile/sandbox/sandbox') as typeof import('../compile/sandbox/sandbox');
  const { resolveUser } = require('../activation/privileges') as typeof import('../activation/privileges');
  const MiB = 1024 * 1024;
  const limits = {
    memoryBytes: config.sandbox.memoryMiB * MiB,
    cpuSeconds: config.jobLifetimeS > 0 ? config.jobLifetimeS : 3600,
    fileBytes: config.sandbox.maxOutputMiB * MiB,
    processes: config.sandbox.processes,
    tmpBytes: config.sandbox.tmpMiB * MiB,
  };
  try {
    const sandbox = Sandbox.locate(config.sandbox.bwrap, process.env['PATH'] ?? '/usr/bin:/bin', limits, { oneJob: inetd, onHostProblem: (reason) => log.warning(reason) });
    const user = config.user ?? defaultUser();
    const as = !runningAsRoot() || user === undefined ? undefined : resolveUser(user);
    // A process per connection remembers the check for the next (probe_cache.ts).
    const { probeCacheDir } = require('../compile/sandbox/probe_cache') as typeof import('../compile/sandbox/probe_cache');
    const check = sandbox.verify(process.env, as, { cacheDir: inetd ? probeCacheDir(process.env) : undefined });
    const fields = { mode, bwrap: sandbox.bwrap, check, memory: `${config.sandbox.memoryMiB}MiB`, cpu: `${limits.cpuSeconds}s`, output: `${config.sandbox.maxOutputMiB}MiB`, tmp: `${config.sandbox.tmpMiB}MiB`, processes: limits.processes, proc: sandbox.proc ? 'own' : 'none', network: sandbox.network ? 'none' : 'the daemon\'s (lo only)', jobs: sandbox.runner };
    return { sandbox, say: () => log.notice('sandbox', fields) };
  } catch (error) {
    if (mode === 'required' || !(error instanceof DistkitError) || error.code !== 'sandbox-unavailable') throw error;
    const text = `SANDBOX UNAVAILABLE, compilers run UNCONFINED and can read every file the daemon's user can: ${error.message} (--sandbox=required refuses to start; --sandbox=off silences this)`;
    // The operator at a terminal hears it too (never under inetd: fd 2 may be the client).
    if (!logsToStderr && !inetd) process.stderr.write(`distccd[${process.pid}] WARNING: ${text}\n`);
    return { sandbox: undefined, say: () => log.warning(text) };
  }
}

/** What every job is run with, frozen. */
function jobSettingsOf(config: DistccdConfig, policy: CompilerPolicy, tmpDir: string, inetd: boolean, sandbox: Sandbox | undefined): JobSettings {
  const { compilerEnvironment } = require('../compile/job') as typeof import('../compile/job');
  return Object.freeze({
    tmpDir,
    // The daemon itself takes --nice (runService, as distccd does) and compilers inherit it: set
    // on the child after spawn, gcc could already have forked cc1 at the old priority.
    nice: 0,
    lifetimeMs: config.jobLifetimeS * 1000,
    saveTemps: process.env['DISTCC_SAVE_TEMPS'] === '1',
    inlineCleanup: inetd,
    env: compilerEnvironment(process.env, [config.compilerDir, '/usr/lib/distcc']),
    policy,
    pid: process.pid,
    sandbox,
  });
}

/**
 * The object cache (undefined: off), opened as the user we start as: a root start makes its
 * directory and gives it to the account the daemon becomes.
 */
async function objectCacheOf(config: DistccdConfig, log: RootLogger, inetd: boolean): Promise<ObjectCache | undefined> {
  if (config.cache === undefined) {
    log.log(inetd ? 'debug' : 'notice', 'object cache off');
    return undefined;
  }
  const { openObjectCache } = require('../compile/object_cache/open_object_cache') as typeof import('../compile/object_cache/open_object_cache');
  let owner: { uid: number; gid: number } | undefined;
  if (runningAsRoot()) {
    const { resolveUser } = require('../activation/privileges') as typeof import('../activation/privileges');
    const user = config.user ?? defaultUser();
    if (user !== undefined) owner = resolveUser(user);
  }
  return openObjectCache(config.cache, log, { owner, measure: !inetd });
}

interface CompileEngine {
  readonly handlers: { main: ConnectionHandler; [name: string]: ConnectionHandler };
  readonly status: () => string;
  /** The object cache, whose `stats` the metrics read; undefined when off. */
  readonly cache?: ObjectCache;
  /** The metrics listener's server, when --metrics-listen or a "metrics" socket asks for one. */
  readonly metrics?: ServiceOptions['metrics'];
}

/**
 * The metrics (src/metrics) when --metrics-listen names a listener or systemd passed a socket
 * named "metrics"; in a process per connection there is no listener to serve them from.
 */
function metricsOf(config: DistccdConfig, decision: ModeDecision, cache: ObjectCache | undefined): { observer: JobObserver; metrics: NonNullable<ServiceOptions['metrics']> } | undefined {
  const { servesManyConnections } = require('../activation/mode') as typeof import('../activation/mode');
  const { METRICS_FD_NAME } = require('../activation/metrics_http') as typeof import('../activation/metrics_http');
  const inherited = decision.fds.some((fd) => fd.name === METRICS_FD_NAME);
  if ((config.metricsListen === undefined && !inherited) || !servesManyConnections(decision)) return undefined;
  const { createMetricsServer } = require('../activation/metrics_http') as typeof import('../activation/metrics_http');
  const { parseListenSpec } = require('../activation/address') as typeof import('../activation/address');
  const { createMetricsRegistry } = require('../metrics/registry') as typeof import('../metrics/registry');
  const { DistccdMetrics } = require('../metrics/distccd_metrics') as typeof import('../metrics/distccd_metrics');
  const { statusPage } = require('../metrics/status_page') as typeof import('../metrics/status_page');
  const observer = new DistccdMetrics(createMetricsRegistry('distccd'));
  if (cache !== undefined) observer.watchObjectCache(() => cache.stats);
  const server = createMetricsServer({ program: 'distccd', registry: observer.registry, status: () => observer.status(), page: statusPage('distccd') });
  const listen = config.metricsListen === undefined ? undefined : parseListenSpec(config.metricsListen, { defaultHost: '127.0.0.1' });
  return { observer, metrics: listen === undefined ? { server } : { listen, server } };
}

/** The compile engine: job slots, stats, and the handlers of the main and --stats listeners. */
function compileEngine(config: DistccdConfig, parts: { log: RootLogger; access: AccessList | undefined; job: JobSettings; decision: ModeDecision; cache?: ObjectCache }): CompileEngine {
  const { JobSlots } = require('../compile/job_slots') as typeof import('../compile/job_slots');
  const { createCompileHandler } = require('../compile/session') as typeof import('../compile/session');
  const { DistccStats, createStatsHandler } = require('../compile/stats') as typeof import('../compile/stats');
  const { log, access, job, cache } = parts;
  const stats = new DistccStats({ maxKids: config.jobs });
  const slots = new JobSlots(config.jobs);
  const watched = metricsOf(config, parts.decision, cache);
  if (watched === undefined && config.metricsListen !== undefined) log.notice('metrics not served: this process serves one connection and exits (inetd, Accept=yes)');
  const observer = watched?.observer;
  const handlers: CompileEngine['handlers'] = { main: createCompileHandler({ log, access, job, slots, stats, cache, requestTimeoutMs: config.ioTimeoutS * 1000, ...(observer === undefined ? {} : { observer }) }) };
  if (config.stats) handlers['stats'] = createStatsHandler(stats, { access, tmpDir: job.tmpDir });
  return { handlers, status: () => `${slots.busy} compiling, ${slots.waiting} waiting`, cache, ...(watched === undefined ? {} : { metrics: watched.metrics }) };
}

/** Serves until stopped: binds or inherits listeners, drops privileges, and runs the engine. */
async function serveCompiles(config: DistccdConfig, parts: { log: RootLogger; decision: ModeDecision; engine: CompileEngine; ready: () => void }): Promise<RunningService> {
  const { log, decision, engine, ready } = parts;
  const { runService } = require('../activation/index') as typeof import('../activation/index');
  return runService({
    program: 'distccd',
    log,
    handlers: engine.handlers,
    mode: config.mode,
    decision,
    listen: listenSpecs(config),
    detach: config.detach,
    pidFile: config.pidFile,
    user: config.user ?? defaultUser(),
    // The account picked for us gets what C's drop gives it: no supplementary group (and no
    // group database lookup, which with systemd's NSS module costs every --inetd job ~7 ms).
    userGroups: config.user === undefined ? 'none' : 'member',
    // TMPDIR was checked as the user we started as; compilers need it as the one we run as.
    afterPrivileges: () => {
      tmpDirOf(process.env);
      ready(); // listening by now, in the process that serves: the sandbox line, zeroconf
    },
    onTcpListener: deferAcceptWanted(process.env) ? (server, address) => setDeferAccept(log, server, address) : undefined,
    nice: config.nice,
    // --jobs bounds the compilers (JobSlots); this bounds the requests being read or waiting
    // (each may hold a DOTI in memory). Further connections wait in the pool, none is refused.
    maxConnections: Math.max(MIN_CONNECTIONS, config.jobs * CONNECTIONS_PER_JOB),
    drainTimeoutMs: config.jobLifetimeS > 0 ? config.jobLifetimeS * 1000 + 5000 : 600_000,
    lifetimeMs: config.lifetimeS * 1000,
    status: engine.status,
    ...(engine.metrics === undefined ? {} : { metrics: engine.metrics }),
  });
}

/** What the ready line says about the compilers allowed. */
function describeCompilers(config: DistccdConfig, policy: CompilerPolicy): string {
  if (config.insecure) return 'any (--enable-tcp-insecure)';
  return policy.commandList !== undefined ? `DISTCC_CMDLIST ${policy.commandList.file}` : config.compilerDir;
}

async function main(argv: readonly string[]): Promise<number> {
  const command = parseDistccdArgs(argv);
  if (command.kind === 'help') {
    process.stdout.write(helpText());
    return EXIT.OK;
  }
  if (command.kind === 'version') {
    process.stdout.write(versionText());
    return EXIT.OK;
  }
  const { config } = command;
  const { detectMode, servesManyConnections } = require('../activation/mode') as typeof import('../activation/mode');
  const { startsDaemonOnly, startDaemon, startedFromSnapshot } = require('../activation/daemonize') as typeof import('../activation/daemonize');
  // The mode is decided once: a daemon serving many peers needs an access list, inetd does not.
  const decision = detectMode(config.mode);
  const inetd = !servesManyConnections(decision);
  const log = startLogging(config, decision);
  const access = await accessListOf(config, inetd);
  const policy = await compilerPolicyOf(config, log);
  const tmpDir = tmpDirOf(process.env);
  const publish = config.zeroconf && !inetd ? zeroconfPublisher(config, log) : undefined;

  let running: RunningService;
  let cache: ObjectCache | undefined;
  try {
    if (startsDaemonOnly(decision, config.detach)) {
      // The daemon builds the engine and serves. A root start with no account to become fails
      // here, before the daemon is spawned, as it fails in a daemon that does not detach.
      if (config.user === undefined) defaultUser();
      running = await startDaemon({ program: 'distccd', log, pidFile: config.pidFile }, decision);
    } else {
      // Checked before the engine is built, as the user that will serve; said after the mode line.
      const { sandbox, say } = sandboxOf(config, log, inetd);
      cache = await objectCacheOf(config, log, inetd);
      const engine = compileEngine(config, { log, access, job: jobSettingsOf(config, policy, tmpDir, inetd, sandbox), decision, cache });
      running = await serveCompiles(config, { log, decision, engine, ready: () => {
        // As the serving user, before the request is read: the one job's sandbox starts meanwhile.
        if (inetd) sandbox?.startAhead(tmpDir);
        say();
        publish?.();
      } });
    }
  } catch (error) {
    if (error instanceof DistkitError && error.code === 'bind-failed') {
      throw new DistkitError(error.code, error.message, { exitCode: EXIT.BIND_FAILED, cause: error });
    }
    throw error;
  }
  if (running.load !== undefined && runningAsRoot()) {
    // Only an explicit --user root gets here (dropping to anyone else is checked to stick); the
    // process that only detached (no load) does not serve, so it has nothing to warn about.
    log.warning('running as root (--user root): compilers run as root for every allowed client');
  }
  log.notice('ready', { jobs: config.jobs, tmpdir: tmpDir, compilers: describeCompilers(config, policy), start: startedFromSnapshot() ? 'snapshot' : 'script' });
  // SIGTERM (drain), SIGHUP (reopen logs) and --lifetime are the activation layer's.
  const code = await running.done;
  // The last jobs' entries are still being written: a restart should find them.
  await cache?.close();
  return code;
}

/** Runs distccd with these arguments and exits with its code (the snapshot's entry calls it too). */
export function run(argv: readonly string[]): void {
  main(argv).then(
    (code) => {
      // Lingering handles (a stuck client socket after the drain) must not keep us alive.
      process.exit(code);
    },
    (error: unknown) => {
      const code = error instanceof DistkitError && error.exitCode !== undefined ? error.exitCode : EXIT.DISTCC_FAILED;
      const message = error instanceof Error ? error.message : String(error);
      startLog?.err('start failed', { exit: code, reason: message });
      // stderr too, for the operator at a terminal (under inetd fd 2 was already taken off the socket).
      if (!logsToStderr) process.stderr.write(`distccd[${process.pid}] ERROR: ${message}\n`);
      process.exit(code);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
