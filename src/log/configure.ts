// One call every CLI makes once it knows its options and its activation mode: pick the sinks
// (explicit ones, else syslog when detached or under inetd/systemd and stderr in the
// foreground), protect fd 2 when it may be the client socket, and set the level.

import type { Level, LogSink, RootLogger } from './logger';
import { fileSink, parseRemoteTarget, remoteSink, stderrSink, syslogSink, type RemoteTarget } from './sinks';
import { protectStderr, type StdioOwner } from './stdio';

export interface LoggingOptions {
  readonly level?: Level;
  /** --log-file: append here, reopened on SIGHUP. */
  readonly file?: string;
  /** --log-stderr. */
  readonly stderr?: boolean;
  /** Local syslog, facility daemon. Default: on when detached or not standalone, if no file/stderr. */
  readonly syslog?: boolean;
  /** A remote collector ("udp:127.0.0.1:514" or parsed), in addition to the local sinks. */
  readonly remote?: RemoteTarget | string;
  /** The activation mode (detectMode(...)): decides the default sink and guards fd 2. */
  readonly decision?: StdioOwner & { readonly kind: string };
  /** Standalone and about to detach: stderr is going away, default to syslog. */
  readonly detach?: boolean;
}

/** Attaches the sinks `options` ask for to `root` (replacing the start-up stderr sink). */
export function configureLogging(root: RootLogger, options: LoggingOptions): void {
  // First, before any line: fd 2 may be the client socket (inetd); the log file takes its place.
  if (options.decision !== undefined) protectStderr(options.decision, options.file);
  if (options.level !== undefined) root.level = options.level;
  const sinks: LogSink[] = [];
  const explicit = options.file !== undefined || options.stderr === true || options.syslog !== undefined;
  const daemonLike = options.detach === true || (options.decision !== undefined && options.decision.kind !== 'standalone');
  if (options.syslog === true || (!explicit && daemonLike)) sinks.push(syslogSink(root.program));
  if (options.file !== undefined) sinks.push(fileSink(root.program, options.file));
  if (options.stderr === true || (!explicit && !daemonLike)) sinks.push(stderrSink(root.program));
  if (options.remote !== undefined) {
    const target = typeof options.remote === 'string' ? parseRemoteTarget(options.remote) : options.remote;
    sinks.push(remoteSink(root.program, target));
  }
  root.setSinks(sinks);
}
