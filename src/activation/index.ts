// The activation layer's entry point: runService(options) takes the mode decided once (or decides
// it), logs which and why as its first line, obtains connections (bound, inherited from systemd
// or inetd, or the single one on stdin/stdout/fd 3) and hands each to the engine's handler
// through one pool. Start-up order matters and is fixed here: pid file check, bind, pid file,
// drop privileges, READY (sd_notify and the detach pipe), signals.

import type { RunningService, ServiceOptions } from './options';
import { detectMode, servesOneConnection, type ModeDecision } from './mode';
import { clearListenEnv } from './listen_fds';
import { ConnectionPool, errorText } from './serve';
import { adoptListener, bindListeners, closeListeners, nodeListeners, type Listener, type ListenerOpener } from './standalone';
import { pumpedListeners } from './pumped_listener';
import { openSingleConnection } from './inetd';
import { reportFailure, reportReady, startDaemon, startsDaemonOnly, takeReportFd } from './daemonize';
import { checkPidFile, removePidFile, writePidFile } from './pid_file';
import { addNiceness, dropPrivileges, raiseFileLimit } from './privileges';
import { Notifier } from './notify';
import { installSignals } from './signals';
import { acceptInto, METRICS_FD_NAME } from './metrics_http';
import { protectStderr } from '../log/stdio';
import { flushLogging } from '../log/sinks';
import { DistkitError, EXIT } from '../errors';

export * from './connection';
export * from './options';
export { detectMode, servesManyConnections, servesOneConnection, type ModeDecision, type ModeKind, type ModeRequest, type InheritedFd } from './mode';
export { parseListenSpec, describeListenSpec } from './address';
export { isProcessAlive, readPidFile } from './pid_file';
export { startedFromSnapshot } from './daemonize';
export { createMetricsServer, METRICS_FD_NAME, type MetricsEndpoints } from './metrics_http';

/** How often STATUS= is refreshed from options.status() while serving under systemd. */
const STATUS_REFRESH_MS = 10_000;

export async function runService(options: ServiceOptions): Promise<RunningService> {
  const decision = options.decision ?? detectMode(options.mode);
  if (startsDaemonOnly(decision, options.detach)) return startDaemon(options, decision);
  // Before anything logs: under inetd fd 2 may be the client socket.
  protectStderr(decision);
  // Compilers and other children must not take our sockets.
  clearListenEnv();
  const reportFd = takeReportFd();
  const mode = `${decision.kind}: ${decision.why}`;
  const { log } = options;

  log.notice('mode', { kind: decision.kind, why: decision.why });
  try {
    raiseFileLimit();
  } catch (error) {
    log.warning('rlimit nofile not raised', { error: errorText(error) });
  }
  const notifier = new Notifier();
  if (servesOneConnection(decision)) return serveSingle(options, decision, mode, notifier);
  try {
    return await serveMany(options, decision, mode, notifier, reportFd);
  } catch (error) {
    if (reportFd !== undefined) reportFailure(reportFd, error);
    throw error;
  }
}

async function serveMany(
  options: ServiceOptions,
  decision: ModeDecision,
  mode: string,
  notifier: Notifier,
  reportFd: number | undefined,
): Promise<RunningService> {
  const { log, pidFile } = options;
  const pool = new ConnectionPool({ handlers: options.handlers, log, maxConnections: options.maxConnections });
  const onConnection = (socket: import('node:net').Socket, name: string): void => pool.accept(socket, name);
  const pumped = options.pumped;
  const opener: ListenerOpener =
    (pumped === undefined ? undefined : pumpedListeners((socket, peer, name) => void pool.admitPumped(socket, peer, name, pumped))) ?? nodeListeners(onConnection);
  let listeners: Listener[];
  if (decision.kind === 'standalone') {
    if (pidFile !== undefined) {
      const stale = checkPidFile(pidFile, options.program);
      if (stale !== undefined) log.notice('pid file stale, replacing', { file: pidFile, pid: stale });
    }
    if (options.listen.length === 0) throw new DistkitError('no-listeners', 'Nothing to listen on: give at least one listen address');
    listeners = await bindListeners(options.listen, opener);
    try {
      for (const l of listeners) if (l.server !== undefined && !l.address.startsWith('unix:')) options.onTcpListener?.(l.server, l.address);
    } catch (error) {
      closeListeners(listeners);
      throw error;
    }
  } else {
    listeners = [];
    for (const fd of decision.fds) if (fd.name !== METRICS_FD_NAME) listeners.push(await adoptListener(fd.fd, fd.name, opener));
    if (listeners.length === 0) {
      throw new DistkitError('no-listeners', `No listening socket inherited (${decision.why}): check the .socket unit or inetd.conf`);
    }
  }
  let side: Listener[] = [];
  try {
    side = await openMetricsListeners(options, decision);
    if (pidFile !== undefined) writePidFile(pidFile);
    becomeUser(options);
  } catch (error) {
    closeListeners(side);
    closeListeners(listeners);
    if (pidFile !== undefined) removePidFile(pidFile);
    throw error;
  }
  const addresses = listeners.map((l) => l.address);
  const status = options.status;
  let refresh: NodeJS.Timeout | undefined;

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  let stopped: Promise<void> | undefined;
  let lifetime: NodeJS.Timeout | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (refresh !== undefined) clearInterval(refresh);
      notifier.status(`stopping: ${pool.active} connections active, ${pool.queued} queued`);
      notifier.stopping();
      closeListeners(listeners);
      closeListeners(side);
      closeMetricsConnections(options);
      log.notice('draining', { active: pool.active, queued: pool.queued });
      const drained = await pool.drain(options.drainTimeoutMs);
      if (!drained) log.warning('drain timed out', { active: pool.active, queued: pool.queued, ms: options.drainTimeoutMs });
      if (lifetime !== undefined) clearTimeout(lifetime);
      if (pidFile !== undefined) removePidFile(pidFile);
      log.notice('stopped');
      await flushLogging();
      resolveDone(EXIT.OK);
    })();
    return stopped;
  };
  // Signal handlers go in before anyone is told we are ready: a supervisor (or a test) that
  // sends SIGTERM the moment it reads READY or "listening" must get the graceful stop, not the
  // default action. They stay until the process exits: after the drain the program still saves
  // what it promised (dc_server's snapshot, distccd's last cache entries), and a second stop
  // signal then (Ctrl-C and a supervisor's SIGTERM, a double kill) is only logged.
  installSignals({ log, stop: () => void stop(), reopen: () => log.reopen(), foreground: reportFd === undefined });
  // max: connections served at once (more wait); 0 means no limit, which the line spells out.
  log.notice('listening', { on: addresses.join(','), max: options.maxConnections > 0 ? options.maxConnections : 'unlimited' });
  for (const l of side) log.notice('metrics listening', { on: l.address, paths: '/metrics,/status.json,/' });
  notifier.ready(status?.());
  if (reportFd !== undefined) reportReady(reportFd, addresses);
  if (notifier.enabled && status !== undefined) {
    refresh = setInterval(() => notifier.status(status()), STATUS_REFRESH_MS);
    refresh.unref();
  }
  if (options.lifetimeMs !== undefined && options.lifetimeMs > 0) {
    lifetime = setTimeout(() => {
      log.notice('lifetime over', { ms: options.lifetimeMs });
      void stop();
    }, options.lifetimeMs);
  }
  return { mode, decision, addresses, stop, done, load: () => ({ active: pool.active, queued: pool.queued }) };
}

function serveSingle(options: ServiceOptions, decision: ModeDecision, mode: string, notifier: Notifier): RunningService {
  const { log } = options;
  if (options.metrics?.listen !== undefined) log.notice('metrics not served: this process serves one connection and exits (inetd, Accept=yes)');
  const inherited = decision.fds[0];
  if (inherited === undefined) throw new DistkitError('no-connection', `No connection to serve (${decision.why})`);
  const single = openSingleConnection(inherited);
  const pool = new ConnectionPool({ handlers: options.handlers, log, maxConnections: 0, release: single.release });
  becomeUser(options);
  let stopped: Promise<void> | undefined;
  let timedOut: (code: number) => void = () => undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      notifier.stopping();
      const drained = await pool.drain(options.drainTimeoutMs);
      if (!drained) {
        log.warning('drain timed out', { active: pool.active, ms: options.drainTimeoutMs });
        timedOut(EXIT.OK);
      }
    })();
    return stopped;
  };
  // Kept until exit, as in runService: the last log lines and saves come after the answer.
  installSignals({ log, stop: () => void stop(), reopen: () => log.reopen(), foreground: false });
  notifier.ready(options.status?.());
  const served = pool.admit(single.stream, single.peer, inherited.name).then((code) => (typeof code === 'number' ? code : EXIT.OK));
  const done = Promise.race([served, new Promise<number>((resolve) => (timedOut = resolve))]).then(async (code) => {
    await flushLogging();
    return code;
  });
  return { mode, decision, addresses: [], stop, done, load: () => ({ active: pool.active, queued: pool.queued }) };
}

/**
 * The metrics listener: bound (standalone, --metrics-listen) or inherited (the fd named
 * "metrics"), feeding options.metrics.server. An inherited metrics socket with no metrics to
 * serve is left alone, never served as a main listener.
 */
async function openMetricsListeners(options: ServiceOptions, decision: ModeDecision): Promise<Listener[]> {
  const { metrics, log } = options;
  const inherited = decision.fds.filter((f) => f.name === METRICS_FD_NAME);
  if (metrics === undefined) {
    if (inherited.length > 0) log.warning('metrics socket inherited but this program serves no metrics: ignored', { fds: inherited.map((f) => f.fd).join(',') });
    return [];
  }
  const accept = nodeListeners(acceptInto(metrics.server));
  if (decision.kind === 'standalone') return metrics.listen === undefined ? [] : bindListeners([{ ...metrics.listen, name: METRICS_FD_NAME }], accept);
  const adopted: Listener[] = [];
  for (const fd of inherited) adopted.push(await adoptListener(fd.fd, METRICS_FD_NAME, accept));
  return adopted;
}

/** Stopping: keep-alive scrapers and open status pages must not hold the process. */
function closeMetricsConnections(options: ServiceOptions): void {
  options.metrics?.server.closeAllConnections();
}

function becomeUser(options: ServiceOptions): void {
  if (options.user !== undefined) {
    const account = dropPrivileges(options.user, { groups: options.userGroups ?? 'member' });
    options.log.notice('privileges dropped', { user: account.name, uid: account.uid, gid: account.gid });
  }
  options.afterPrivileges?.();
  if (options.nice !== undefined && options.nice !== 0) {
    options.log.info('nice', { value: addNiceness(options.nice) });
  }
}
