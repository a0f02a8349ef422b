// A cache session's bytes on the native socket pump (../activation/socket_pump, a transport of
// ./cache_transport; the protocol is ./session's, the same as on a Node stream): a connection the
// pump accepted itself (servePumpedSocket), or an accepted net.Socket handed over to it
// (servePumpedConnection). The answers of a turn are gathered in the pump's one output area, every
// connection's, and handed to C in one call when the pump's callback returns (one send() per
// connection there); answers that come later are sent at their flush. A connection that is not a
// plain accepted socket keeps ./stream_transport.
//
// DISTKIT_CACHE_IO=stream in the environment keeps every connection on Node streams (a way back
// should the native path ever misbehave, and the bench's baseline).

import type { Duplex } from 'node:stream';
import type { Connection } from '../activation/connection';
import { adoptSocket, outputArea, type PumpedConnection, type PumpHandler, type PumpedSocket } from '../activation/socket_pump';
import type { CacheTransport, TransportSink } from './cache_transport';
import type { OutputArea } from './output_area';
import { runCacheSession, serveCacheSession, type CacheSessionEngine, type CacheSessionOptions } from './session';

/** Whether connections go to the pump (read once: a process serves all its connections one way). */
const PUMP_ENABLED = process.env.DISTKIT_CACHE_IO !== 'stream';

/** Whether this process serves its connections on the pump (its listeners may accept there). */
export function cachePumpEnabled(): boolean {
  return PUMP_ENABLED;
}

/** Serves `conn` on the pump until it ends; undefined when it cannot go there (see above). */
export function servePumpedConnection(conn: Connection, engine: CacheSessionEngine, options: CacheSessionOptions = {}): Promise<void> | undefined {
  const transport = pumpTransportOf(conn);
  return transport === undefined ? undefined : serveCacheSession(conn, engine, transport, options);
}

/** Serves a connection the pump accepted until it ends, then calls `finished`. */
export function servePumpedSocket(conn: PumpedConnection, engine: CacheSessionEngine, options: CacheSessionOptions, finished: () => void): void {
  runCacheSession(conn, engine, pumpTransportOfSocket(conn.socket), options, finished);
}

/** `conn`'s accepted socket moved to the pump, as a transport; undefined when it cannot go there
 * (see above). Any session over a CacheTransport can use it (dc_client's applications too). */
export function pumpTransportOf(conn: Connection): CacheTransport | undefined {
  if (!PUMP_ENABLED) return undefined;
  const transport = new PumpTransport(conn.stream);
  const socket = adoptSocket(conn.stream, transport, { noDelay: conn.peer.kind === 'tcp' });
  if (socket === undefined) return undefined;
  transport.adopted(socket);
  return transport;
}

/** A socket the pump accepted itself, as a transport. */
export function pumpTransportOfSocket(socket: PumpedSocket): CacheTransport {
  const transport = new PumpTransport(undefined);
  transport.adopted(socket);
  return transport;
}

/** Forwards the pump's events to the session (the pump calls it only after start: its first
 * events come on a later turn of the loop) and moves the session's bytes. */
class PumpTransport implements CacheTransport, PumpHandler, OutputArea {
  /** The pump reads every socket into one arena, reused next turn. */
  readonly lendsInput = true;
  /** Answers go straight into the pump's output area (see claim). */
  readonly output: OutputArea = this;
  /** The net.Socket handed over to the pump, if any (it owns the connection: see adoptSocket). */
  readonly #owner: Duplex | undefined;
  #socket!: PumpedSocket;
  #sink!: TransportSink;
  /** Reading paused because too many answers wait for later ones. */
  #held = false;
  /** The session is over: nothing more is written or reported. */
  #released = false;

  constructor(owner: Duplex | undefined) {
    this.#owner = owner;
  }

  adopted(socket: PumpedSocket): void {
    this.#socket = socket;
  }

  start(sink: TransportSink): void {
    this.#sink = sink;
    // An accepted socket hears its events from now on (those held meanwhile first).
    this.#socket.attach(this);
  }

  onData(arena: Buffer, start: number, end: number): void {
    this.#sink.onData(arena, start, end);
  }

  onEnd(): void {
    this.#sink.onEnd();
  }

  onDrain(): void {
    this.#sink.onDrain();
  }

  onError(code: string): void {
    // After release, the session is over: a failure of its last bytes is nobody's news.
    if (!this.#released) this.#sink.onError(code);
  }

  onBlocked(): void {
    if (!this.#released) this.#sink.onBlocked();
  }

  onClosed(): void {
    this.#sink.onClosed();
  }

  onGone(): void {
    this.#sink.onGone();
  }

  add(bytes: Buffer): void {
    if (!this.#released) this.#socket.append(bytes);
  }

  get bytes(): Buffer {
    return outputArea();
  }

  claim(length: number): number {
    return this.#released ? -1 : this.#socket.claim(length);
  }

  flush(): void {
    this.#socket.commit();
  }

  /** The pump says so with onBlocked, not between answers. */
  full(): boolean {
    return false;
  }

  /** The pump resumed reading itself before onDrain. */
  resume(): void {}

  hold(held: boolean): void {
    if (this.#held === held) return;
    this.#held = held;
    this.#socket.pause(held);
  }

  discardInput(): void {
    this.hold(false); // read and discard what else the peer sends, so its writes do not block
  }

  end(): boolean {
    return this.#socket.end();
  }

  /** The pump says so with onClosed. */
  finished(): boolean {
    return false;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  release(): void {
    this.#released = true;
    // The pump is done with the socket (both sides ended, or it failed, or it was cut): closing
    // the owner now sends the FIN without the shutdown and 'finish' round the activation layer's
    // end() would take, which a connection per request (mod_socache_dc) pays every time. A
    // socket the pump accepted has no owner: it is closed already, or closes now.
    if (this.#owner !== undefined) this.#owner.destroy();
    else this.#socket.destroy();
  }
}
