// Message reassembly: a message is 1..16 frames sharing uid and operation, the last one marked
// complete. decodeMessage is the stateless decoder over one buffer; MessageReader feeds it a byte
// stream chunk by chunk with a bounded accumulation buffer. Neither does I/O.
//
// Payloads of one-frame messages are views into the input (valid until the reader's next push);
// multi-frame payloads are assembled into a new buffer. Copy a payload to keep it.

import { INCOMPLETE, MAX_MESSAGE_WIRE, MAX_READER_BUFFER, type Decoded, type Direction, type Operation } from './constants';
import { decodeFrame, type MessageHeader } from './frame';

export interface Message extends MessageHeader {
  readonly payload: Buffer;
  /** How many frames carried it (1..16). */
  readonly frames: number;
}

/** Decodes the message starting at `offset`; only frame headers are scanned (at most 16). */
export function decodeMessage(buf: Uint8Array, direction: Direction, options: { offset?: number } = {}): Decoded<Message> {
  let at = options.offset ?? 0;
  let uid = 0;
  let operation = 0;
  const parts: Buffer[] = [];
  for (let index = 0; ; index++) {
    const frame = decodeFrame(buf, direction, { offset: at, context: { index, uid, operation } });
    if (frame.kind !== 'ok') return frame;
    if (index === 0) {
      uid = frame.value.uid;
      operation = frame.value.operation;
    }
    parts.push(frame.value.data);
    at = frame.next;
    if (frame.value.complete) {
      const payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      return {
        kind: 'ok',
        value: { isResponse: frame.value.isResponse, uid, operation: operation as Operation, payload, frames: parts.length },
        next: at,
      };
    }
  }
}

export type ReadResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'corrupt'; readonly reason: string; /** byte offset in the whole stream */ readonly offset: number }
  | { readonly kind: 'ok'; readonly value: Message };

/**
 * A byte stream in, messages out, one at a time (so the caller can stop between two messages for
 * back-pressure). A chunk is parsed in place; only an incomplete tail is copied, into a buffer that
 * grows to at most what a pending tail plus one chunk needs. After a corrupt result the reader
 * stays corrupt: a framing error cannot be resynchronised.
 */
export class MessageReader {
  readonly #direction: Direction;
  #buf: Buffer = Buffer.alloc(0);
  #start = 0;
  #end = 0;
  /** #buf is our own accumulation buffer (true) or the caller's chunk (false). */
  #owned = false;
  /** Stream offset of #buf[0]. */
  #base = 0;
  #corrupt: ReadResult | undefined;

  constructor(direction: Direction) {
    this.#direction = direction;
  }

  /** Bytes received and not yet returned as a message. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Stream bytes consumed by returned messages so far. */
  get consumed(): number {
    return this.#base + this.#start;
  }

  /**
   * Appends a chunk. Views returned by earlier next() calls may be invalid afterwards. Throws a
   * RangeError when more than MAX_READER_BUFFER bytes would wait unparsed.
   */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const pending = this.#end - this.#start;
    if (pending + chunk.length > MAX_READER_BUFFER) {
      throw new RangeError(`distcache reader would hold ${pending + chunk.length} unparsed bytes, above ${MAX_READER_BUFFER}`);
    }
    if (pending === 0) {
      this.#base += this.#end;
      this.#buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      this.#start = 0;
      this.#end = chunk.length;
      this.#owned = false;
      return;
    }
    const needed = pending + chunk.length;
    if (this.#owned && this.#end + chunk.length <= this.#buf.length) {
      this.#buf.set(chunk, this.#end);
      this.#end += chunk.length;
      return;
    }
    if (this.#owned && needed <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      // Own memory (never the pooled allocator: a tail must not pin an unrelated slab), doubling
      // (amortised O(1) per byte), at least one whole message so a byte-by-byte peer does not
      // cause a reallocation per byte.
      const grown = Buffer.allocUnsafeSlow(Math.max(needed, Math.min(2 * needed, MAX_READER_BUFFER), MAX_MESSAGE_WIRE));
      this.#buf.copy(grown, 0, this.#start, this.#end);
      this.#buf = grown;
      this.#owned = true;
    }
    this.#base += this.#start;
    this.#start = 0;
    this.#end = pending;
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** The next whole message, or incomplete (push more), or corrupt (close the stream). */
  next(): ReadResult {
    if (this.#corrupt !== undefined) return this.#corrupt;
    if (this.#start === this.#end) return INCOMPLETE;
    const view = this.#buf.subarray(0, this.#end);
    const result = decodeMessage(view, this.#direction, { offset: this.#start });
    switch (result.kind) {
      case 'incomplete':
        this.#release();
        return INCOMPLETE;
      case 'corrupt':
        this.#corrupt = { kind: 'corrupt', reason: result.reason, offset: this.#base + result.offset };
        return this.#corrupt;
      case 'ok':
        this.#start = result.next;
        return { kind: 'ok', value: result.value };
    }
  }

  /**
   * Copies the unparsed bytes out of the caller's last chunk, when they are still a view of it:
   * for a caller that reuses its read buffer (the native socket pump's arena).
   */
  detach(): void {
    if (!this.#owned && this.#end > this.#start) this.#release();
  }

  /**
   * While waiting on a tail (always shorter than one message): copy it out of the caller's chunk
   * so the chunk can be freed, or out of an own buffer that a burst grew far beyond one message.
   */
  #release(): void {
    if (this.#owned && this.#buf.length <= 2 * MAX_MESSAGE_WIRE) return;
    const pending = this.#end - this.#start;
    const own = Buffer.allocUnsafeSlow(Math.max(pending * 2, 4096));
    this.#buf.copy(own, 0, this.#start, this.#end);
    this.#base += this.#start;
    this.#buf = own;
    this.#start = 0;
    this.#end = pending;
    this.#owned = true;
  }
}
