// What dc_server, dc_client and dc_snoop share on their command lines and at run time: the
// daemon options of the originals (-daemon -pidfile -user -sockowner -sockgroup -sockperms
// -killable), our logging options (-loglevel -logfile -syslog), the help/error exits with the
// original wording, the activation mode and listeners (-listen FD:0 means inetd), -killable
// (SIGUSR1/SIGUSR2 stop cleanly, otherwise ignored; SIGTERM and SIGHUP are the activation
// layer's) and turning a start-up failure into one clear line and exit status 1.

import { DistkitError, EXIT, UsageError } from '../errors';
import { parseLevel, parseRemoteTarget, type Level, type RootLogger } from '../log/index';
import { configureLogging } from '../log/configure';
import { createMetricsServer, detectMode, METRICS_FD_NAME, parseListenSpec, servesManyConnections, type ListenSpec, type ModeDecision, type ModeRequest, type RunningService, type ServiceOptions } from '../activation/index';
import type { Registry } from 'prom-client';
import { resolveUser } from '../activation/privileges';
import { parseCacheAddress, resolveCacheAddress, toListenSpec } from '../cache/address';
import { parseSingleDash, printOptionError, invalidArgument, parseDecimal, type SingleDashResult, type SingleDashValues } from './single_dash';

/** Daemon options every cache program takes, beyond its own. */
export const DAEMON_STRING_OPTIONS = ['pidfile', 'user', 'sockowner', 'sockgroup', 'sockperms', 'loglevel', 'logfile', 'logremote'] as const;
export const DAEMON_BOOLEAN_OPTIONS = ['daemon', 'killable', 'syslog'] as const;

/** -logremote, which dc_snoop takes too. */
export const LOGREMOTE_USAGE = '  -logremote <addr>  (ours: log to a syslog collector too: udp:HOST:PORT, tcp:[::1]:601)';

/** The usage lines for the daemon options (column layout of the originals). */
export const DAEMON_USAGE = [
  '  -daemon            (go to the background once listening)',
  '  -pidfile <path>    (write the process id to this file)',
  '  -user <user>       (switch to this user, and its groups, after binding)',
  '  -sockowner <user>  (owner of a UNIX: listening socket file)',
  '  -sockgroup <group> (group of a UNIX: listening socket file)',
  '  -sockperms <oct>   (octal permissions of a UNIX: listening socket file)',
  '  -killable          (SIGUSR1 or SIGUSR2 stops the program cleanly)',
  '  -loglevel <level>  (ours: err, warning, notice, info or debug; def: notice)',
  '  -logfile <path>    (ours: append log lines here, reopened on SIGHUP)',
  '  -syslog            (ours: log to syslog, facility daemon; the default when detached)',
  LOGREMOTE_USAGE,
];

/** -metrics, for the programs that serve many connections in one process (dc_server, dc_client). */
export const METRICS_USAGE = '  -metrics <addr>    (ours: Prometheus /metrics and a status page at /, e.g. 127.0.0.1:9101; port 0: any, logged)';

/** Prints the usage (help: EXIT.OK) or the error and the usage (EXIT.FAILED); returns the values otherwise. */
export function valuesOrExit(result: SingleDashResult, usage: string): SingleDashValues {
  if (result.kind === 'help') {
    process.stderr.write(usage);
    process.exit(EXIT.OK);
  }
  if (result.kind === 'error') {
    printOptionError(result.message, usage);
    process.exit(EXIT.FAILED);
  }
  return result.values;
}

/** Parses argv with the daemon options added to the program's own. */
export function parseCacheArgs(
  argv: readonly string[],
  own: { strings: readonly string[]; booleans: readonly string[]; repeatable?: readonly string[]; aliases?: Record<string, string> },
  usage: string,
): SingleDashValues {
  return valuesOrExit(
    parseSingleDash(argv, {
      strings: [...own.strings, ...DAEMON_STRING_OPTIONS],
      booleans: [...own.booleans, ...DAEMON_BOOLEAN_OPTIONS],
      repeatable: own.repeatable ?? [],
      aliases: own.aliases ?? {},
    }),
    usage,
  );
}

export interface DaemonSettings {
  readonly detach: boolean;
  readonly killable: boolean;
  readonly syslog: boolean;
  readonly level?: Level;
  readonly logFile?: string;
  /** -logremote: a remote syslog collector, checked by parseRemoteTarget. */
  readonly logRemote?: string;
  readonly pidFile?: string;
  readonly user?: string;
  readonly sockOwner?: string;
  readonly sockGroup?: string;
  readonly sockPerms?: number;
}

/** A decimal option in [min, max]: undefined when absent; out of range or not a number is a UsageError. */
export function decimalOption(values: SingleDashValues, name: string, range: { readonly min: number; readonly max: number }): number | undefined {
  const text = values[name] as string | undefined;
  if (text === undefined) return undefined;
  const value = parseDecimal(text, range.min, range.max);
  if (value === undefined) throw new UsageError(invalidArgument(name));
  return value;
}

/** -logremote, checked (a bad collector address is a UsageError). */
export function logRemoteOf(values: SingleDashValues): string | undefined {
  const remote = values['logremote'] as string | undefined;
  if (remote === undefined) return undefined;
  try {
    parseRemoteTarget(remote);
  } catch {
    throw new UsageError(invalidArgument('logremote'));
  }
  return remote;
}

/** Reads the daemon and logging options; a bad -sockperms or -loglevel is a UsageError. */
export function daemonSettingsOf(values: SingleDashValues): DaemonSettings {
  const text = (k: string): string | undefined => values[k] as string | undefined;
  const perms = text('sockperms');
  if (perms !== undefined && !/^[0-7]{1,4}$/.test(perms)) throw new UsageError(invalidArgument('sockperms'));
  const levelText = text('loglevel');
  let level: Level | undefined;
  if (levelText !== undefined) {
    try {
      level = parseLevel(levelText);
    } catch {
      throw new UsageError(invalidArgument('loglevel'));
    }
  }
  const remote = logRemoteOf(values);
  return Object.freeze({
    detach: values.daemon === true,
    killable: values.killable === true,
    syslog: values.syslog === true,
    ...(level === undefined ? {} : { level }),
    ...(text('logfile') === undefined ? {} : { logFile: text('logfile')! }),
    ...(remote === undefined ? {} : { logRemote: remote }),
    ...(text('pidfile') === undefined ? {} : { pidFile: text('pidfile')! }),
    ...(text('user') === undefined ? {} : { user: text('user')! }),
    ...(text('sockowner') === undefined ? {} : { sockOwner: text('sockowner')! }),
    ...(text('sockgroup') === undefined ? {} : { sockGroup: text('sockgroup')! }),
    ...(perms === undefined ? {} : { sockPerms: parseInt(perms, 8) }),
  });
}

/**
 * -killable: SIGUSR1/SIGUSR2 stop the service cleanly (exit 0). Without it they are ignored, as
 * in the originals (Node would otherwise die, or treat SIGUSR1 as "start the inspector").
 * Installed before the service starts, so an early signal is never fatal; a stop asked for before
 * attach() happens at attach().
 */
export function installKillable(options: { killable: boolean; log: RootLogger; onStop?: () => void }): { attach(service: RunningService): void } {
  const { log } = options;
  let service: RunningService | undefined;
  let requested: string | undefined;
  const stop = (signal: string): void => {
    if (requested !== undefined) return;
    requested = signal;
    log.notice('signal stop', { signal, why: '-killable' });
    options.onStop?.();
    if (service !== undefined) void service.stop();
  };
  for (const signal of ['SIGUSR1', 'SIGUSR2'] as const) {
    process.on(signal, () => {
      if (options.killable) stop(signal);
      else log.info('signal ignored', { signal, why: 'not -killable' });
    });
  }
  return {
    attach(s) {
      service = s;
      if (requested !== undefined) void s.stop();
    },
  };
}

/** What runService needs from the options and the mode decision: spread it into ServiceOptions. */
export interface CacheRuntime {
  readonly mode: ModeRequest;
  readonly decision: ModeDecision;
  readonly listen: readonly ListenSpec[];
  readonly detach: boolean;
  readonly pidFile?: string;
  readonly user?: string;
}

/**
 * Decides the activation mode once and attaches the log sinks. "-listen FD:0" (or FD:0:1) is the
 * original's way to serve one connection on stdin/stdout: our inetd mode. Other addresses become
 * ListenSpecs (host names resolved to IPv4), used when nothing is inherited from systemd or inetd.
 */
export async function prepareRuntime(log: RootLogger, listenTexts: readonly string[], daemon: DaemonSettings): Promise<CacheRuntime> {
  const addresses = listenTexts.map(parseCacheAddress);
  const fds = addresses.filter((a) => a.kind === 'fd');
  for (const fd of fds) {
    if (fd.kind === 'fd' && !(fd.read === 0 && (fd.write === 0 || fd.write === 1))) {
      throw new DistkitError('bad-address', `Bad address "${fd.text}": only FD:0 and FD:0:1 (one connection on stdin/stdout, as under inetd) are supported`);
    }
  }
  if (fds.length > 0 && fds.length !== addresses.length) {
    throw new DistkitError('bad-address', 'Bad -listen: FD:0 serves one connection on stdin/stdout and cannot be combined with other addresses');
  }
  const mode: ModeRequest = fds.length > 0 ? 'inetd' : daemon.detach ? 'daemon' : 'auto';
  const decision = detectMode(mode);
  configureLogging(log, {
    ...(daemon.level === undefined ? {} : { level: daemon.level }),
    ...(daemon.logFile === undefined ? {} : { file: daemon.logFile }),
    ...(daemon.syslog ? { syslog: true } : {}),
    ...(daemon.logRemote === undefined ? {} : { remote: daemon.logRemote }),
    decision,
    detach: daemon.detach && decision.kind === 'standalone',
  });
  // libnal's chown gave the socket the owner's primary group when no -sockgroup was named.
  const sockGroup = daemon.sockGroup ?? (daemon.sockOwner === undefined ? undefined : String(resolveUser(daemon.sockOwner).gid));
  const listen: ListenSpec[] = [];
  if (fds.length === 0) {
    for (const address of addresses) {
      listen.push(
        toListenSpec(await resolveCacheAddress(address), {
          ...(daemon.sockOwner === undefined ? {} : { owner: daemon.sockOwner }),
          ...(sockGroup === undefined ? {} : { group: sockGroup }),
          ...(daemon.sockPerms === undefined ? {} : { mode: daemon.sockPerms }),
        }),
      );
    }
  }
  return {
    mode,
    decision,
    listen,
    detach: daemon.detach,
    ...(daemon.pidFile === undefined ? {} : { pidFile: daemon.pidFile }),
    ...(daemon.user === undefined ? {} : { user: daemon.user }),
  };
}

/**
 * The -metrics listener of dc_server and dc_client: -metrics HOST:PORT (loopback when no host),
 * or the socket systemd passes as "metrics". Undefined when neither, or when the process serves
 * one connection (inetd): there is no listener to serve them from.
 */
export function metricsListenerOf<T extends { readonly registry: Registry; status(): object }>(
  values: SingleDashValues,
  runtime: CacheRuntime,
  program: string,
  build: (registry: Registry) => T,
): { readonly watcher: T; readonly service: NonNullable<ServiceOptions['metrics']> } | undefined {
  const text = values['metrics'] as string | undefined;
  let listen: ListenSpec | undefined;
  if (text !== undefined) {
    try {
      listen = parseListenSpec(text, { defaultHost: '127.0.0.1' });
    } catch {
      throw new UsageError(invalidArgument('metrics'));
    }
  }
  const inherited = runtime.decision.fds.some((fd) => fd.name === METRICS_FD_NAME);
  if ((listen === undefined && !inherited) || !servesManyConnections(runtime.decision)) return undefined;
  // Loaded only when asked for: prom-client is not free to load, and most starts have no metrics.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { createMetricsRegistry } = require('../metrics/registry') as typeof import('../metrics/registry');
  const { statusPage } = require('../metrics/status_page') as typeof import('../metrics/status_page');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const watcher = build(createMetricsRegistry(program));
  const server = createMetricsServer({ program, registry: watcher.registry, status: () => watcher.status(), page: statusPage(program) });
  return { watcher, service: listen === undefined ? { server } : { listen, server } };
}

/** Runs a CLI's main; bad usage prints with the usage, other failures as one line; EXIT.FAILED. */
export function runMain(main: () => Promise<number>, usage: string, log: RootLogger): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof UsageError) printOptionError(error.message, usage);
      else if (error instanceof DistkitError) log.err(error.message, { code: error.code });
      else log.err('fatal', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      process.exit(EXIT.FAILED);
    },
  );
}
