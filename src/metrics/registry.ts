// One Prometheus registry per daemon process (prom-client): the default process metrics (CPU,
// RSS, event-loop lag, GC, open fds; all read when scraped but the event-loop delay histogram's
// timer and the GC observer, which runs once per garbage collection), the lines the remote syslog collector did not take, and
// whatever the daemon's own metrics file (distccd_metrics, cache_metrics, proxy_metrics) adds.

import { Registry, collectDefaultMetrics } from 'prom-client';
import { droppedRemoteLines } from '../log/sinks';
import { ReadValue } from './instruments';

/** How often the event-loop delay is sampled (nodejs_eventloop_lag_{min,max,mean,p50,...}_seconds), ms. */
const EVENT_LOOP_SAMPLE_MS = 100;

/** `dc_server` -> `dc_server`; the prefix of every metric of that program. */
export function metricPrefix(program: string): string {
  return program.replace(/[^a-zA-Z0-9_]/g, '_');
}

export function createMetricsRegistry(program: string): Registry {
  const registry = new Registry();
  // The event-loop delay histogram samples on a timer; at prom-client's default 10 ms that timer
  // wakes an idle daemon 100 times a second (5.6 ms of CPU a second measured idle, and the bulk of
  // what -metrics added per request when requests come one at a time). At 100 ms: 0.5 ms a second,
  // and a blocked loop still shows in full (the late timer measures the whole block).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  // Gauges named like counters (promtool check metrics rejects them); each is the sum of its
  // labelled sibling (nodejs_active_handles{type=...}), which stays.
  for (const misnamed of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(misnamed);
  new ReadValue(registry, {
    name: `${metricPrefix(program)}_log_lines_dropped_total`,
    help: 'Log lines the remote syslog collector (--log-remote, -logremote) did not receive: not connected, or the send failed.',
    type: 'counter',
    read: droppedRemoteLines,
  });
  return registry;
}
