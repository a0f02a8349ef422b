// What dc_server, dc_client and dc_snoop share on their command lines and at run time: the
// daemon options of the originals (-daemon -pidfile -user -sockowner -sockgroup -sockperms
// -killable), our -loglevel, the help/error exits with the original wording, signal meanings
// (-killable: SIGUSR1/SIGUSR2 stop cleanly, otherwise ignored; SIGTERM/SIGINT stop gracefully;
// SIGHUP reopens logs) and turning a start-up failure into one clear line and exit status 1.

import { DistkitError } from '../errors';
import { parseLevel, type RootLogger } from '../log/index';
import type { RunningService } from '../activation/index';
import { parseSingleDash, printOptionError, invalidArgument, type SingleDashResult, type SingleDashValues } from './single_dash';

/** Daemon options every cache program takes, beyond its own. */
export const DAEMON_STRING_OPTIONS = ['pidfile', 'user', 'sockowner', 'sockgroup', 'sockperms', 'loglevel'] as const;
export const DAEMON_BOOLEAN_OPTIONS = ['daemon', 'killable'] as const;

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
];

/** Thrown for a bad option value; the CLI prints it with the usage and exits 1. */
export class OptionError extends Error {}

/** Prints the usage (help: exit 0) or the error and the usage (exit 1); returns the values otherwise. */
export function valuesOrExit(result: SingleDashResult, usage: string): SingleDashValues {
  if (result.kind === 'help') {
    process.stderr.write(usage);
    process.exit(0);
  }
  if (result.kind === 'error') {
    printOptionError(result.message, usage);
    process.exit(1);
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
  readonly pidFile?: string;
  readonly user?: string;
  readonly sockOwner?: string;
  readonly sockGroup?: string;
  readonly sockPerms?: number;
}

/** Reads the daemon options; a bad -sockperms or -loglevel is an OptionError. */
export function daemonSettingsOf(values: SingleDashValues, log: RootLogger): DaemonSettings {
  const text = (k: string): string | undefined => values[k] as string | undefined;
  const perms = text('sockperms');
  if (perms !== undefined && !/^[0-7]{1,4}$/.test(perms)) throw new OptionError(invalidArgument('sockperms'));
  const level = text('loglevel');
  if (level !== undefined) {
    try {
      log.level = parseLevel(level);
    } catch {
      throw new OptionError(invalidArgument('loglevel'));
    }
  }
  return Object.freeze({
    detach: values.daemon === true,
    killable: values.killable === true,
    ...(text('pidfile') === undefined ? {} : { pidFile: text('pidfile')! }),
    ...(text('user') === undefined ? {} : { user: text('user')! }),
    ...(text('sockowner') === undefined ? {} : { sockOwner: text('sockowner')! }),
    ...(text('sockgroup') === undefined ? {} : { sockGroup: text('sockgroup')! }),
    ...(perms === undefined ? {} : { sockPerms: parseInt(perms, 8) }),
  });
}

/**
 * Signal meanings. SIGUSR1/SIGUSR2 are handled even without -killable: the originals ignore them
 * then (and Node would otherwise die, or treat SIGUSR1 as "start the inspector"). Installed before
 * the service starts, so a signal in the first instant is never fatal; a stop asked for before
 * attach() happens at attach().
 */
export function installSignals(options: { killable: boolean; log: RootLogger; onStop?: () => void }): { attach(service: RunningService): void } {
  const { log } = options;
  let service: RunningService | undefined;
  let requested: string | undefined;
  const stop = (signal: string): void => {
    if (requested !== undefined) return;
    requested = signal;
    log.notice('stop', { signal });
    options.onStop?.();
    if (service !== undefined) void service.stop();
  };
  for (const signal of ['SIGUSR1', 'SIGUSR2'] as const) {
    process.on(signal, () => {
      if (options.killable) stop(signal);
      else log.info('signal ignored', { signal, why: 'not -killable' });
    });
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => log.reopen());
  return {
    attach(s) {
      service = s;
      if (requested !== undefined) void s.stop();
    },
  };
}

/** Runs a CLI's main; option problems print with the usage, other failures as one line; exit 1. */
export function runMain(main: () => Promise<number>, usage: string, log: RootLogger): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof OptionError) printOptionError(error.message, usage);
      else if (error instanceof DistkitError) log.err(error.message, { code: error.code });
      else log.err('fatal', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      process.exit(1);
    },
  );
}
