// One Prometheus registry per daemon process (prom-client): the default process metrics (CPU,
// RSS, event-loop lag, GC, open fds), the lines the remote syslog collector did not take, and
// whatever the daemon's own metrics file (distccd_metrics, cache_metrics, proxy_metrics) adds.

import { Registry, collectDefaultMetrics } from 'prom-client';
import { droppedRemoteLines } from '../log/sinks';
import { ReadValue } from './instruments';

/** `dc_server` -> `dc_server`; the prefix of every metric of that program. */
export function metricPrefix(program: string): string {
  return program.replace(/[^a-zA-Z0-9_]/g, '_');
}

export function createMetricsRegistry(program: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
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
