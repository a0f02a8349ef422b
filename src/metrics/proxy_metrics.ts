// dc_client's metrics and status: the upstream connection (up or down, connects, losses), the
// applications connected and the requests in flight and queued. All read when scraped, except the
// state changes, which the Upstream reports through its onState hook.

import type { Registry } from 'prom-client';
import { CountVec, ReadValue, type CountSlot } from './instruments';
import type { StatusView } from './status_page';

/** What the metrics read of the proxy (Upstream and the connection pool). */
export interface ProxySources {
  readonly upstream: {
    readonly connected: boolean;
    readonly inFlight: number;
    readonly queued: number;
    /** Each -server in order of preference (UpstreamPool). */
    readonly servers: ReadonlyArray<{ readonly name: string; readonly connected: boolean; readonly serving: boolean }>;
    /** Times the requests moved to another server. */
    readonly switches: number;
  };
  /** Application connections being served now. */
  readonly applications: () => number;
  /** The server forwarded to, as the log names it. */
  readonly server: string;
}

export class ProxyMetrics {
  readonly registry: Registry;
  readonly #sources: ProxySources;
  readonly #connects: CountSlot;
  readonly #losses: CountSlot;
  #since = Date.now();

  constructor(registry: Registry, sources: ProxySources) {
    this.registry = registry;
    this.#sources = sources;
    const read = (name: string, help: string, value: () => number): void => void new ReadValue(registry, { name, help, type: 'gauge', read: value });
    read('dc_client_upstream_up', '1 while the connection to the cache server is up, else 0.', () => (sources.upstream.connected ? 1 : 0));
    read('dc_client_applications_connected', 'Application connections being served now.', sources.applications);
    read('dc_client_requests_in_flight', 'Requests sent to the cache server and not yet answered.', () => sources.upstream.inFlight);
    read('dc_client_requests_queued', 'Requests waiting to be sent to the cache server.', () => sources.upstream.queued);
    this.#connects = new CountVec(registry, { name: 'dc_client_upstream_connects_total', help: 'Connections made to the cache server (the first one and every reconnect).', type: 'counter' }).child();
    this.#losses = new CountVec(registry, { name: 'dc_client_upstream_losses_total', help: 'Connections to the cache server lost (each one followed by reconnect attempts every -retry ms).', type: 'counter' }).child();
    const perServer = (pick: (s: ProxySources['upstream']['servers'][number]) => boolean) => () => sources.upstream.servers.map((s) => ({ labels: { server: s.name }, value: pick(s) ? 1 : 0 }));
    new ReadValue(registry, { name: 'dc_client_upstream_server_up', help: '1 while the connection to this -server is up, else 0 (each -server is kept connected).', type: 'gauge', read: perServer((s) => s.connected) });
    new ReadValue(registry, { name: 'dc_client_upstream_serving', help: '1 for the -server the last request went to (the first one up, in the order given), else 0.', type: 'gauge', read: perServer((s) => s.serving) });
    new ReadValue(registry, { name: 'dc_client_upstream_failovers_total', help: 'Times the requests moved from one -server to another (a failover, or back to a preferred one).', type: 'counter', read: () => sources.upstream.switches });
    new ReadValue(registry, { name: 'dc_client_upstream_reconnects_total', help: 'Connections made to the cache server after one was lost.', type: 'counter', read: () => Math.max(0, this.#connects.value - 1) });
  }

  /** Upstream's onState. */
  stateChanged(state: 'connected' | 'down'): void {
    if (state === 'connected') this.#connects.value++;
    else this.#losses.value++;
    this.#since = Date.now();
  }

  status(): StatusView & Record<string, unknown> {
    const { upstream, server } = this.#sources;
    const applications = this.#sources.applications();
    return {
      upstream: { server, connected: upstream.connected, inFlight: upstream.inFlight, queued: upstream.queued, connects: this.#connects.value, losses: this.#losses.value, servers: upstream.servers, failovers: upstream.switches },
      applications,
      tiles: [
        { label: `upstream ${server}`, value: upstream.connected ? 'up' : 'down', tone: upstream.connected ? 'good' : 'bad' },
        { label: 'since', value: new Date(this.#since).toISOString().slice(11, 19) },
        { label: 'reconnects', value: String(Math.max(0, this.#connects.value - 1)) },
        { label: 'failovers', value: String(upstream.switches), ...(upstream.switches > 0 ? { tone: 'warn' as const } : {}) },
        { label: 'applications', value: String(applications) },
        { label: 'in flight', value: String(upstream.inFlight) },
        { label: 'queued', value: String(upstream.queued) },
      ],
      tables: [
        {
          title: 'Cache servers, in order of preference',
          columns: ['server', 'state', 'serving'],
          rows: upstream.servers.map((s) => [s.name, s.connected ? 'up' : 'down', s.serving ? 'yes' : '']),
        },
      ],
    };
  }
}
