// One application connection to dc_client (Apache's mod_socache_dc, libdistcache): read its
// request messages, forward each over the shared Upstream, and write the answers back with the
// application's own uids, in the order it asked (the original serves one request per application
// at a time; ours lets it pipeline up to MAX_PIPELINED and still answers in order).
// An application that leaves with requests outstanding simply loses their answers; nothing else
// is disturbed (the original's multiplexer_mark_dead_client marked every client's items dead).
// The bytes move through a cache transport (../cache_transport), as dc_server's sessions do: the
// native socket pump (../pumped_session: a connection its listeners accepted, or an accepted
// socket handed over) or a Node stream (inetd's pipes, a test's Duplex, DISTKIT_CACHE_IO=stream).

import type { Connection, ConnectionHandler } from '../../activation/connection';
import type { PumpedConnectionHandler } from '../../activation/socket_pump';
import type { Logger } from '../../log/index';
import { encodeMessage } from '../wire/frame';
import { MessageReader, type Message } from '../wire/message_reader';
import { ADD_PREFIX_SIZE, Operation } from '../wire/constants';
import { DISCONNECTED_PAYLOAD, type UpstreamAnswer, type UpstreamTicket } from './upstream';
import type { RequestForwarder } from './upstream_pool';
import type { CacheTransport, TransportSink } from '../cache_transport';
import { StreamTransport } from '../stream_transport';
import { armIdleBound } from '../idle_bound';
import { pumpTransportOf, pumpTransportOfSocket } from '../pumped_session';

/** Requests one application may have outstanding; beyond that its socket is not read. */
export const MAX_PIPELINED = 32;

export interface ProxySessionOptions {
  readonly log: Logger;
  /** Drop a connection with nothing outstanding after this long without a request; 0 = never. */
  readonly idleMs: number;
}

interface Slot {
  readonly uid: number;
  readonly operation: Operation;
  response: Buffer | undefined;
  ticket: UpstreamTicket | undefined;
}

function payloadOf(answer: UpstreamAnswer): Buffer {
  switch (answer.kind) {
    case 'response':
      return answer.payload;
    case 'disconnected':
      return DISCONNECTED_PAYLOAD;
    case 'unavailable':
      // sclient's clients_to_server: no server, so the response carries no data at all.
      return Buffer.alloc(0);
  }
}

/** The ConnectionHandler dc_client runs (and the tests run): every application connection served
 * over the one shared `upstream` (an Upstream, or dc_client's UpstreamPool of several). */
export function proxyHandler(upstream: RequestForwarder, options: ProxySessionOptions): ConnectionHandler {
  return (conn) => serveProxySession(conn, upstream, pumpTransportOf(conn) ?? new StreamTransport(conn, { pauseOnHold: true }), options);
}

/** The same for the connections dc_client's listeners accepted in the native socket pump. */
export function pumpedProxyHandler(upstream: RequestForwarder, options: ProxySessionOptions): PumpedConnectionHandler {
  return (conn) => serveProxySession(conn, upstream, pumpTransportOfSocket(conn.socket), options);
}

/** Serves one application connection until it closes; never rejects. */
function serveProxySession(conn: Pick<Connection, 'id'>, upstream: RequestForwarder, transport: CacheTransport, options: ProxySessionOptions): Promise<void> {
  return new Promise<void>((resolve) => new ProxySession(conn, upstream, transport, options, resolve).start());
}

/** How forwarding the buffered requests stopped. */
type ForwardStop = 'exhausted' | 'full' | 'refused';

/** One application connection's state, and one method per step of serving it. */
class ProxySession implements TransportSink {
  readonly #transport: CacheTransport;
  readonly #upstream: RequestForwarder;
  readonly #idleMs: number;
  readonly #log: Logger;
  /** Settles serveProxySession's promise. */
  readonly #resolve: () => void;
  readonly #reader = new MessageReader('request');
  /** Requests forwarded and not yet answered to the application, in the order it sent them. */
  readonly #slots: Slot[] = [];
  #readEnded = false;
  /** The application is not taking its answers: we forward nothing more until it drains. */
  #blocked = false;
  /** Our side is ended (every answer given) or cut: nothing more is read or written. */
  #closing = false;
  #settled = false;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(conn: Pick<Connection, 'id'>, upstream: RequestForwarder, transport: CacheTransport, options: ProxySessionOptions, resolve: () => void) {
    this.#transport = transport;
    this.#upstream = upstream;
    this.#idleMs = options.idleMs;
    this.#log = options.log.child({ conn: conn.id });
    this.#resolve = resolve;
  }

  start(): void {
    this.#armIdle();
    this.#transport.start(this);
  }

  onData(bytes: Buffer, start: number, end: number): void {
    if (this.#closing) return;
    try {
      this.#reader.push(bytes, start, end);
    } catch (error) {
      this.#refuse({ why: (error as Error).message });
      return;
    }
    this.#readRequests();
    // What is left unparsed must not stay a view of a buffer the transport reuses.
    if (this.#transport.lendsInput) this.#reader.detach();
  }

  onEnd(): void {
    this.#readEnded = true;
    this.#readRequests();
  }

  onDrain(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    if (!this.#readEnded && this.#slots.length < MAX_PIPELINED) this.#transport.resume();
    this.#readRequests();
  }

  onBlocked(): void {
    this.#blocked = true;
  }

  onError(code: string): void {
    this.#log.debug('application connection error', { error: code });
    this.#drop();
  }

  onClosed(): void {
    this.#settle();
  }

  onGone(): void {
    this.#settle();
  }

  /** dc_server's idle bound (../idle_bound), re-armed by each request; a connection with
   * answers still to come is not idle. */
  #armIdle(): void {
    if (this.#settled) return;
    this.#idleTimer = armIdleBound(this.#idleTimer, this.#idleMs, () => {
      if (this.#slots.length > 0) return this.#armIdle();
      this.#log.info('idle close', { idle_ms: this.#idleMs });
      this.#drop();
    });
  }

  /** Forwards what the application sent; reads on only while its pipeline has room and it takes
   * its answers, and ends our side once it half-closed and has every answer. */
  #readRequests(): void {
    if (this.#closing) return;
    const stop = this.#forwardBuffered();
    if (stop === 'refused') return;
    // Back-pressure: a full pipeline or an application that does not read its answers stops us
    // reading its socket, so its buffers stay bounded.
    this.#transport.hold(this.#slots.length >= MAX_PIPELINED);
    if (this.#readEnded && stop === 'exhausted' && this.#slots.length === 0) {
      // The application half-closed and has every answer: flush and close our side too.
      this.#closing = true;
      if (this.#transport.end()) this.#settle();
    }
  }

  #forwardBuffered(): ForwardStop {
    while (this.#slots.length < MAX_PIPELINED) {
      if (this.#blocked || this.#transport.full()) {
        this.#blocked = true;
        return 'full';
      }
      const r = this.#reader.next();
      if (r.kind === 'incomplete') return 'exhausted';
      if (r.kind === 'corrupt') return this.#refuse({ why: r.reason, offset: r.offset });
      const m = r.value;
      if (m.operation === Operation.ADD && m.payload.length < ADD_PREFIX_SIZE) {
        // The cache server closes a connection on such an ADD: forwarded, it would take the
        // shared upstream connection (and every other application's requests) down with it.
        return this.#refuse({ why: `ADD payload of ${m.payload.length} bytes is shorter than ${ADD_PREFIX_SIZE}` });
      }
      this.#forward(m);
      this.#armIdle();
    }
    return 'full';
  }

  /** Sends one request upstream; its answer waits in its slot until those before it are written. */
  #forward(m: Message): void {
    const slot: Slot = { uid: m.uid, operation: m.operation, response: undefined, ticket: undefined };
    this.#slots.push(slot);
    // Copy: the payload may be a view into the reader's buffer and the request may wait in a queue.
    slot.ticket = this.#upstream.send(m.operation, Buffer.from(m.payload), (answer) => {
      slot.response = encodeMessage({ isResponse: true, uid: slot.uid, operation: slot.operation }, payloadOf(answer));
      this.#writeAnswered();
    });
  }

  /** Writes the answers that are next in order (in one write), then reads on. */
  #writeAnswered(): void {
    if (this.#closing) return;
    const transport = this.#transport;
    while (this.#slots.length > 0 && this.#slots[0]!.response !== undefined) {
      transport.add(this.#slots.shift()!.response!);
    }
    transport.flush();
    this.#readRequests();
  }

  /** A bad request: the connection goes, and with it the answers it still waits for. */
  #refuse(fields: Record<string, string | number>): 'refused' {
    this.#log.warning('bad request', fields);
    this.#cancel();
    this.#drop();
    return 'refused';
  }

  /** Cuts the connection: nothing more is read or written, and the session settles. */
  #drop(): void {
    this.#transport.destroy();
    this.#settle();
  }

  #cancel(): void {
    for (const s of this.#slots.splice(0)) s.ticket?.cancel();
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#closing = true;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    if (this.#slots.length > 0) this.#log.info('application left', { discarded: this.#slots.length });
    this.#cancel();
    this.#transport.release();
    this.#resolve();
  }
}
