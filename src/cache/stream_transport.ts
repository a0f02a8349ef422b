// A cache session's bytes on a Node stream (./cache_transport): inetd's pipe pair, a test's Duplex,
// a socket the native pump cannot take, every connection under DISTKIT_CACHE_IO=stream. The
// answers of one read go out in one write (./write_batch); back-pressure is the stream's own
// (writableNeedDrain: we pause reading until 'drain').

import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Connection } from '../activation/connection';
import type { CacheTransport, TransportSink } from './cache_transport';
import { WriteBatch } from './write_batch';

export class StreamTransport implements CacheTransport {
  readonly lendsInput = false;
  readonly #stream: Duplex;
  readonly #batch: WriteBatch;
  readonly #pauseOnHold: boolean;
  #sink!: TransportSink;

  /** pauseOnHold: hold() stops reading the stream (dc_client's applications: a full pipeline
   * stops their reads); else it keeps reading and only the parsing waits (dc_server's sessions). */
  constructor(conn: Connection, options: { pauseOnHold?: boolean } = {}) {
    this.#stream = conn.stream;
    this.#pauseOnHold = options.pauseOnHold ?? false;
    this.#batch = new WriteBatch(this.#stream);
    if (conn.peer.kind === 'tcp' && this.#stream instanceof net.Socket) this.#stream.setNoDelay(true);
  }

  start(sink: TransportSink): void {
    this.#sink = sink;
    const stream = this.#stream;
    stream.on('data', this.#onData);
    stream.on('drain', this.#onDrain);
    stream.on('end', this.#onEnd);
    stream.on('finish', this.#onFinish);
    stream.on('close', this.#onClose);
    stream.on('error', this.#onError);
    if (stream.readableEnded) sink.onEnd();
    stream.resume();
  }

  add(bytes: Buffer): void {
    this.#batch.add(bytes);
  }

  flush(): void {
    this.#batch.flush();
  }

  /** The batch writes every BATCH_BYTES, so writableNeedDrain is current between answers. */
  full(): boolean {
    if (!this.#stream.writableNeedDrain) return false;
    this.#stream.pause();
    return true;
  }

  resume(): void {
    this.#stream.resume();
  }

  /** Without pauseOnHold a stream keeps reading while answers wait (its buffer is bounded by what
   * the peer sends). */
  hold(held: boolean): void {
    if (!this.#pauseOnHold) return;
    if (held) this.#stream.pause();
    else if (!this.#stream.writableNeedDrain) this.#stream.resume();
  }

  discardInput(): void {
    this.#stream.off('data', this.#onData);
    this.#stream.resume(); // so the peer's writes do not block
  }

  end(): boolean {
    this.#stream.end();
    return false;
  }

  finished(): boolean {
    return this.#stream.writableFinished;
  }

  destroy(): void {
    this.#stream.destroy();
  }

  release(): void {
    const stream = this.#stream;
    stream.off('data', this.#onData);
    stream.off('drain', this.#onDrain);
    stream.off('end', this.#onEnd);
    stream.off('finish', this.#onFinish);
    stream.off('close', this.#onClose);
    // Keep a listener: a late error on a stream we let go of must not crash the process.
    stream.on('error', () => {});
    stream.off('error', this.#onError);
  }

  readonly #onData = (chunk: Buffer): void => this.#sink.onData(chunk, 0, chunk.length);
  readonly #onDrain = (): void => this.#sink.onDrain();
  readonly #onEnd = (): void => this.#sink.onEnd();

  readonly #onFinish = (): void => {
    // Everything we wrote has been handed to the kernel. Close only once the peer is done too:
    // closing a socket with unread input sends a reset, and a dropped peer still sending would
    // lose the answers it has not read yet (the session's grace timer bounds the wait).
    if (this.#stream.readableEnded) this.#sink.onClosed();
  };

  readonly #onClose = (): void => this.#sink.onGone();
  readonly #onError = (error: NodeJS.ErrnoException): void => this.#sink.onError(error.code ?? error.message);
}
