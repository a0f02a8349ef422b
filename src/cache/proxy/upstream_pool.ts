// dc_client's failover over several cache servers (-server given more than once, in order of
// preference). Policy: one Upstream per server, all kept connected (each retried every -retry ms
// while down, as a single one always was), and every request goes to the first server in that
// order whose connection is up. So when the server in use dies, the requests it had are answered
// DISCONNECTED (0x02) as before and the next request already goes to the next server, over a
// connection that is up, without waiting for a retry; when an earlier server comes back, its
// retry reconnects it and new requests go to it again (requests still outstanding elsewhere are
// answered there). With one server this is exactly the single Upstream. Several dc_server front
// ends on one Redis then lose nothing but the requests in flight on the one that died.

import type { Logger } from '../../log/index';
import { describeConnectTarget, type ConnectTarget } from '../address';
import type { Operation } from '../wire/constants';
import { Upstream, type AnswerCallback, type UpstreamOptions, type UpstreamTicket } from './upstream';

/** What an application connection needs from dc_client's upstream side. */
export interface RequestForwarder {
  send(operation: Operation, payload: Buffer, done: AnswerCallback): UpstreamTicket;
}

export class UpstreamPool implements RequestForwarder {
  readonly #members: ReadonlyArray<{ readonly upstream: Upstream; readonly name: string }>;
  readonly #log: Logger;
  /** The member the last request went to (logged when it changes). */
  #current: Upstream | undefined;
  #switches = 0;

  constructor(targets: readonly ConnectTarget[], options: UpstreamOptions) {
    if (targets.length === 0) throw new RangeError('UpstreamPool needs at least one server');
    this.#members = targets.map((target) => ({ upstream: new Upstream(target, options), name: describeConnectTarget(target) }));
    this.#log = options.log;
  }

  /** Whether some server is connected. */
  get connected(): boolean {
    return this.#members.some((m) => m.upstream.connected);
  }

  get inFlight(): number {
    return this.#members.reduce((n, m) => n + m.upstream.inFlight, 0);
  }

  get queued(): number {
    return this.#members.reduce((n, m) => n + m.upstream.queued, 0);
  }

  /** Each server in order of preference: connected, and whether the last request went to it. */
  get servers(): ReadonlyArray<{ readonly name: string; readonly connected: boolean; readonly serving: boolean }> {
    const current = this.#members.length === 1 ? this.#members[0]!.upstream : this.#current;
    return this.#members.map((m) => ({ name: m.name, connected: m.upstream.connected, serving: m.upstream === current }));
  }

  /** Times the requests moved from one server to another (a failover, or back). */
  get switches(): number {
    return this.#switches;
  }

  /** "IP:a:1 up, IP:b:2 down" for the status line. */
  describe(): string {
    return this.#members.map((m) => `${m.name} ${m.upstream.connected ? 'up' : 'down'}`).join(', ');
  }

  start(): void {
    for (const m of this.#members) m.upstream.start();
  }

  stop(): void {
    for (const m of this.#members) m.upstream.stop();
  }

  /** Forwards to the first connected server; while none is connected, to the first one still
   * connecting; with none at all, the first answers "no server" as a single upstream does. */
  send(operation: Operation, payload: Buffer, done: AnswerCallback): UpstreamTicket {
    const chosen =
      this.#members.find((m) => m.upstream.connected) ?? this.#members.find((m) => m.upstream.active) ?? this.#members[0]!;
    if (this.#members.length > 1 && chosen.upstream !== this.#current && chosen.upstream.active) {
      const from = this.#members.find((m) => m.upstream === this.#current);
      if (from !== undefined) this.#switches++;
      this.#log.notice('upstream serving', { server: chosen.name, ...(from === undefined ? {} : { previous: from.name }) });
      this.#current = chosen.upstream;
    }
    return chosen.upstream.send(operation, payload, done);
  }
}
