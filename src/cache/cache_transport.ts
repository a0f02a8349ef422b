// What one cache session (./session) needs of the thing that moves its bytes, and what it hears
// back. Two implementations: ./stream_transport (a Node stream: inetd pipes, test Duplexes,
// DISTKIT_CACHE_IO=stream) and ./pumped_session (an accepted socket on the native pump). The
// protocol (parse, answer in order, drop, idle, settle, counting, logs) lives in the session only;
// a transport knows no protocol.

import type { OutputArea } from './output_area';

/** Moves one connection's bytes; every call after destroy() or a closing end() does nothing. */
export interface CacheTransport {
  /** Starts delivering events to `sink` (the session is fully set up by then). */
  start(sink: TransportSink): void;
  /** The bytes given to onData are only valid during the call (the session copies what it keeps). */
  readonly lendsInput: boolean;
  /** Adds one answer to the bytes of this turn (may write when they would not fit). */
  add(bytes: Buffer): void;
  /** Where an answer can be written in place instead of add()ed, if the transport has room of
   * its own (the pump); claims come in order with add()s. */
  readonly output?: OutputArea;
  /** Writes the bytes of this turn. */
  flush(): void;
  /** The peer is not taking our bytes: stop answering until onDrain (may stop reading too). */
  full(): boolean;
  /** Reading resumes after onDrain (the peer has not ended). */
  resume(): void;
  /** Stops (true) or restarts (false) reading while too many answers wait for later ones. */
  hold(held: boolean): void;
  /** After a bad request: what the peer still sends is read and thrown away. */
  discardInput(): void;
  /** FIN once the written bytes left: true = closed already, false = onClosed comes later. */
  end(): boolean;
  /** Everything written (the FIN included) has been handed over. */
  finished(): boolean;
  /** Cuts the connection now. */
  destroy(): void;
  /** The session is over: let the connection go (no event after this). */
  release(): void;
}

/** What a transport tells its session. */
export interface TransportSink {
  /** Bytes in: bytes[start, end). */
  onData(bytes: Buffer, start: number, end: number): void;
  /** The peer ended its side. */
  onEnd(): void;
  /** The peer took what was waiting to be written. */
  onDrain(): void;
  /** A write was queued rather than taken: stop answering until onDrain. */
  onBlocked(): void;
  /** The connection failed (code: 'ECONNRESET', ...). */
  onError(code: string): void;
  /** Both sides ended after our end(). */
  onClosed(): void;
  /** The connection was closed under us. */
  onGone(): void;
}
