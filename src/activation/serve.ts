// The one place where connections meet handlers, whatever mode brought them: a pool that serves
// at most `maxConnections` at once and queues the rest paused (back-pressure, as s6-tcpserver
// does by not accepting: none is refused, none is lost), closes each stream after its handler,
// and drains on a graceful stop (queued connections are still served, bounded by a timeout).

import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionHandler, PeerAddress } from './connection';
import { describePeer } from './connection';
import type { PumpedConnectionHandler, PumpedSocket } from './socket_pump';
import type { Logger } from '../log/index';
import { peerOf } from './address';

export interface PoolOptions {
  readonly handlers: { readonly main: ConnectionHandler } & { readonly [name: string]: ConnectionHandler };
  readonly log: Logger;
  /** 0 = no limit. */
  readonly maxConnections: number;
  /** Called with the stream once its handler is done, instead of the default end-then-destroy. */
  readonly release?: (stream: Duplex) => void;
}

/** Serves a connection numbered `id`: until the promise it returns settles, or, when it returns
 * nothing, until it calls `finished`. */
type Serve = (id: number, finished: () => void) => Promise<number | void> | void;

/** How long a finished connection may take to flush its last bytes before it is destroyed. */
const FLUSH_TIMEOUT_MS = 10_000;

export class ConnectionPool {
  readonly #options: PoolOptions;
  #nextId = 1;
  #active = 0;
  readonly #queue: Array<() => void> = [];
  readonly #idleWaiters: Array<() => void> = [];

  constructor(options: PoolOptions) {
    this.#options = options;
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Serves `stream` now, or later when a slot frees. Resolves with the handler's result (a
   * number for single-connection modes), or 1 when the handler threw.
   */
  admit(stream: Duplex, peer: PeerAddress, listener: string): Promise<number | void> {
    // A peer that resets the connection (even while queued) must not crash the process; the
    // handler sees the error through its own reads/writes, the layer only keeps it handled.
    stream.on('error', () => undefined);
    const handler = this.#options.handlers[listener] ?? this.#options.handlers.main;
    const serve = (id: number): Promise<number | void> => {
      // Accepted sockets arrive paused (pauseOnConnect: a queued one reads nothing). Put the
      // stream back in its initial state so whatever the handler uses (on('data'), pipe,
      // for await) starts the reading, when it is ready: nothing is read into the void.
      if (stream.readableFlowing === false) (stream as { readableFlowing: boolean | null }).readableFlowing = null;
      return handler({ stream, peer, id, listener });
    };
    return new Promise((resolve) => this.#admit(serve, () => (this.#options.release ?? releaseStream)(stream), peer, resolve));
  }

  /** Serves a connection the socket pump accepted (its input is held until `handler` attaches
   * to it), as admit() does a stream; the socket is destroyed once the handler is done. Nothing
   * to wait for (a connection per request, as mod_socache_dc makes them, paid for a promise
   * chain here that nobody awaited), and a handler that returns nothing says it is done by a
   * call (see PumpedConnectionHandler). */
  admitPumped(socket: PumpedSocket, peer: PeerAddress, listener: string, handler: PumpedConnectionHandler): void {
    this.#admit((id, finished) => handler({ socket, peer, id, listener }, finished), () => socket.destroy(), peer, undefined);
  }

  /** Runs `serve` with a connection number now, or later when a slot frees; `release` after it,
   * then `done` with its result (1 when it threw or rejected). */
  #admit(serve: Serve, release: () => void, peer: PeerAddress, done: ((result: number | void) => void) | undefined): void {
    const max = this.#options.maxConnections;
    if (max > 0 && this.#active >= max) {
      this.#queue.push(() => this.#start(serve, release, peer, done));
      this.#options.log.debug('queue', { peer: describePeer(peer), queued: this.#queue.length, active: this.#active });
    } else {
      this.#start(serve, release, peer, done);
    }
  }

  #start(serve: Serve, release: () => void, peer: PeerAddress, done: ((result: number | void) => void) | undefined): void {
    this.#active++;
    const id = this.#nextId++;
    let over = false;
    const finished = (value?: number | void): void => {
      if (over) return;
      over = true;
      this.#finish(release, done, value);
    };
    const failed = (error: unknown): void => {
      this.#options.log.err('handler failed', { conn: id, peer: describePeer(peer), error: errorText(error) });
      finished(1);
    };
    let running: Promise<number | void> | void;
    try {
      running = serve(id, finished);
    } catch (error) {
      // A handler that throws before its first await is failed like a rejection.
      return failed(error);
    }
    // Nothing returned: the handler calls finished itself (a pumped one may).
    if (running !== undefined) Promise.resolve(running).then(finished, failed); // the same promise when it is one
  }

  #finish(release: () => void, done: ((result: number | void) => void) | undefined, result: number | void): void {
    try {
      release();
    } finally {
      this.#active--;
      done?.(result);
      const next = this.#queue.shift();
      if (next !== undefined) next();
      else if (this.#active === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  /** Takes an accepted socket (paused by pauseOnConnect) from listener `name`. */
  accept(socket: net.Socket, name: string): void {
    void this.admit(socket, peerOf(socket), name);
  }

  /**
   * Resolves true once nothing is active or queued, or false after `timeoutMs` (the rest are
   * abandoned to process exit).
   */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.#active === 0 && this.#queue.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

/** Ends the stream (FIN after pending writes), then destroys it; bounded so a stuck peer cannot pin it. */
export function releaseStream(stream: Duplex): void {
  if (stream.destroyed) return;
  const timer = setTimeout(() => stream.destroy(), FLUSH_TIMEOUT_MS);
  timer.unref();
  const finish = (): void => {
    clearTimeout(timer);
    stream.destroy();
  };
  if (stream.writableFinished) finish();
  else {
    stream.once('finish', finish);
    stream.once('close', () => clearTimeout(timer));
    if (!stream.writableEnded) stream.end();
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
