#!/usr/bin/env node
// dc_client: the per-host distcache proxy. Applications (Apache mod_socache_dc, libdistcache)
// connect to it locally; it multiplexes their requests over one connection to dc_server, retries
// that connection every -retry ms, and answers locally while no server is reachable. Ours takes
// -server more than once: failover in that order of preference (see cache/proxy/upstream_pool).
// Options -> frozen config -> UpstreamPool + runService(proxyHandler; the applications accepted
// in the native socket pump unless DISTKIT_CACHE_IO=stream).

import { createLogger } from '../log/index';
import { runService } from '../activation/index';
import { describeConnectTarget, parseCacheAddress, toConnectTarget } from '../cache/address';
import { UpstreamPool } from '../cache/proxy/upstream_pool';
import { proxyHandler, pumpedProxyHandler } from '../cache/proxy/app_session';
import { cachePumpEnabled } from '../cache/pumped_session';
import { EXIT } from '../errors';
import { DAEMON_USAGE, METRICS_USAGE, daemonSettingsOf, decimalOption, installKillable, metricsListenerOf, parseCacheArgs, prepareRuntime, runMain } from './cache_cli';
import type { RunningService } from '../activation/index';
import type { ProxyMetrics } from '../metrics/proxy_metrics';

const PROGRAM = 'dc_client';
/** MAX_RETRY_PERIOD / MIN_RETRY_PERIOD / MAX_IDLE_PERIOD of the original, in ms. */
const MAX_RETRY_MS = 3_600_000;
const MIN_RETRY_MS = 1;
const MAX_IDLE_MS = 3_600_000;
/** CLIENTS_MAX_ITEMS: application connections served at once (the rest wait to be accepted). */
const MAX_APPLICATIONS = 1024;
const DEFAULT_LISTEN = 'UNIX:/tmp/scache';

const USAGE = [
  '',
  'Usage: dc_client [options]      where options are:',
  '  -listen <addr>     (where applications connect; def: UNIX:/tmp/scache; ours: repeatable)',
  '  -server <addr>     (the cache server to forward to; required; ours: repeatable, in order of',
  '                      preference: each is kept connected and requests go to the first one up)',
  '  -connect <addr>    (the same as -server)',
  '  -retry <num>       (ms between attempts to reach the server, 1..3600000; def: 5000)',
  '  -idle <num>        (ms before an idle application connection is dropped; def: 0 = never)',
  METRICS_USAGE,
  ...DAEMON_USAGE,
  '  -<h|help|?>        (print this text)',
  '',
  ' Addresses: IP:port  IP:host:port  IPv4:host:port  IP:[v6addr]:port  UNIX:/path',
  ' Example: dc_client -listen UNIX:/run/scache -server IP:10.0.0.5:9001',
  '   takes requests on /run/scache and forwards them to the cache server at 10.0.0.5 port 9001.',
  '',
].join('\n') + '\n';

async function main(): Promise<number> {
  const log = createLogger(PROGRAM);
  const values = parseCacheArgs(
    process.argv.slice(2),
    { strings: ['listen', 'server', 'retry', 'idle', 'metrics'], booleans: [], repeatable: ['listen', 'server'], aliases: { connect: 'server' } },
    USAGE,
  );
  const servers = values.server as readonly string[];
  if (servers.length === 0) {
    process.stderr.write('Error, no server specified!\n');
    return EXIT.FAILED;
  }
  const retryMs = decimalOption(values, 'retry', { min: MIN_RETRY_MS, max: MAX_RETRY_MS }) ?? 5000;
  const idleMs = decimalOption(values, 'idle', { min: 0, max: MAX_IDLE_MS }) ?? 0;
  const daemon = daemonSettingsOf(values);
  const targets = servers.map((s) => toConnectTarget(parseCacheAddress(s)));
  const listenTexts = (values.listen as readonly string[]).length > 0 ? (values.listen as readonly string[]) : [DEFAULT_LISTEN];
  const runtime = await prepareRuntime(log, listenTexts, daemon);
  const config = Object.freeze({ targets, retryMs, idleMs, daemon });

  let metrics: ProxyMetrics | undefined;
  let service: RunningService | undefined;
  // Every server's connection reports its state: the metrics count connects and losses of all.
  const upstream = new UpstreamPool(config.targets, { retryMs: config.retryMs, log, onState: (state) => metrics?.stateChanged(state) });
  const watched = metricsListenerOf(values, runtime, PROGRAM, (registry) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- only with -metrics
    const { ProxyMetrics } = require('../metrics/proxy_metrics') as typeof import('../metrics/proxy_metrics');
    return new ProxyMetrics(registry, { upstream, applications: () => service?.load?.().active ?? 0, server: config.targets.map(describeConnectTarget).join(', ') });
  });
  metrics = watched?.watcher;
  const signals = installKillable({ killable: config.daemon.killable, log, onStop: () => upstream.stop() });
  const session = { log, idleMs: config.idleMs };
  service = await runService({
    program: PROGRAM,
    log,
    handlers: { main: proxyHandler(upstream, session) },
    // Applications accepted in the native socket pump, unless DISTKIT_CACHE_IO=stream.
    ...(cachePumpEnabled() ? { pumped: pumpedProxyHandler(upstream, session) } : {}),
    ...runtime,
    maxConnections: MAX_APPLICATIONS,
    drainTimeoutMs: 2000,
    status: () => `upstream ${upstream.connected ? 'connected' : 'down'} (${upstream.describe()}), ${upstream.inFlight} in flight, ${upstream.queued} queued`,
    ...(watched === undefined ? {} : { metrics: watched.service }),
  });
  upstream.start();
  signals.attach(service);
  const code = await service.done;
  upstream.stop();
  return code;
}

runMain(main, USAGE, createLogger(PROGRAM));
