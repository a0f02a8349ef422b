// Messages gathered into one buffer and handed to a Node stream in one write: the answers of one
// read (a session on a stream: inetd's pipes, DISTKIT_CACHE_IO=stream), or the requests dc_client
// forwards upstream in one turn of the event loop while its connection is not on the socket pump.
// One syscall and one trip through the stream machinery per burst instead of one per message
// (cork/uncork made that a writev with an array and a request object per message).
//
// The buffer is reused from write to write while the kernel takes each write whole: a net.Socket
// whose writableLength is 0 right after write() has copied our bytes into the kernel and keeps no
// reference to them. When a write is queued instead, the queue keeps the buffer and we take a new
// one. Any other stream (pipes under inetd, a test's Duplex) may keep a chunk after its callback,
// so it gets a copy of exactly the bytes.

import net from 'node:net';
import type { Duplex } from 'node:stream';

/** Bytes gathered before a write: a burst of messages, bounded so back-pressure still bites
 * every 64 KiB. */
export const BATCH_BYTES = 64 * 1024;

export class WriteBatch {
  readonly #stream: Duplex;
  /** The socket keeps nothing of a chunk once writableLength is back to 0 (see above). */
  readonly #reusable: boolean;
  #buf: Buffer | undefined;
  #length = 0;

  constructor(stream: Duplex) {
    this.#stream = stream;
    this.#reusable = stream instanceof net.Socket;
  }

  /** Bytes waiting for flush(). */
  get length(): number {
    return this.#length;
  }

  /** Adds one message; writes what was gathered first when it would not fit. */
  add(bytes: Buffer): void {
    if (this.#length + bytes.length > BATCH_BYTES) {
      this.flush();
      if (bytes.length > BATCH_BYTES) {
        this.#stream.write(bytes);
        return;
      }
    }
    this.#buf ??= Buffer.allocUnsafeSlow(BATCH_BYTES);
    bytes.copy(this.#buf, this.#length);
    this.#length += bytes.length;
  }

  /** Writes what was gathered, in one write. */
  flush(): void {
    const length = this.#length;
    if (length === 0) return;
    this.#length = 0;
    const buf = this.#buf!;
    const stream = this.#stream;
    if (!this.#reusable || stream.writableLength > 0) {
      stream.write(Buffer.from(buf.subarray(0, length)));
      return;
    }
    stream.write(buf.subarray(0, length));
    // Queued rather than taken by the kernel: the queue holds our buffer now.
    if (stream.writableLength > 0) this.#buf = undefined;
  }
}
