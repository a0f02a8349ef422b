// Message reassembly: a message is 1..16 frames sharing uid and operation, the last one marked
// complete. decodeMessage is the stateless decoder over one buffer; MessageReader feeds it a byte
// stream chunk by chunk with a bounded accumulation buffer. Neither does I/O.
//
// Payloads of one-frame messages are views into the input (valid until the reader's next push);
// multi-frame payloads are assembled into a new buffer. Copy a payload to keep it.

import {
  FRAME_HEADER_SIZE,
  INCOMPLETE,
  MAX_FRAME_DATA,
  MAX_MESSAGE_WIRE,
  MAX_OPERATION,
  MAX_READER_BUFFER,
  OP_CLASS_USER,
  PROTO_HI,
  PROTO_LO,
  type Decoded,
  type Direction,
  type Operation,
} from './constants';
import { decodeFrame, type MessageHeader } from './frame';


/** Where a reader starts: shared, never written (only an #owned buffer is), and Buffer.alloc(0)
 * cost a connection per request (mod_socache_dc) about 0.3 us. */
const EMPTY = Buffer.alloc(0);

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

/** The buffer whose memory payload views were last made from, and that memory (#wholeFrame);
 * one buffer at most is kept alive by it. */
let viewed: Buffer | undefined;
let viewedMemory: ArrayBufferLike | undefined;

/**
 * A byte stream in, messages out, one at a time (so the caller can stop between two messages for
 * back-pressure). A chunk is parsed in place; only an incomplete tail is copied, into a buffer that
 * grows to at most what a pending tail plus one chunk needs. After a corrupt result the reader
 * stays corrupt: a framing error cannot be resynchronised.
 */
export class MessageReader {
  readonly #direction: Direction;
  /** The is_response byte of this direction's frames. */
  readonly #isResponse: number;
  #buf: Buffer = EMPTY;
  #start = 0;
  #end = 0;
  /** #buf is our own accumulation buffer (true) or the caller's chunk (false). */
  #owned = false;
  /** Stream offset of #buf[0]. */
  #base = 0;
  #corrupt: ReadResult | undefined;

  constructor(direction: Direction) {
    this.#direction = direction;
    this.#isResponse = direction === 'response' ? 1 : 0;
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
   * Appends chunk[start, end) (the whole chunk by default). Views returned by earlier next()
   * calls may be invalid afterwards. Throws a RangeError when more than MAX_READER_BUFFER bytes
   * would wait unparsed.
   */
  push(chunk: Uint8Array, start = 0, end = chunk.length): void {
    const length = end - start;
    if (length <= 0) return;
    const pending = this.#end - this.#start;
    if (pending + length > MAX_READER_BUFFER) {
      throw new RangeError(`distcache reader would hold ${pending + length} unparsed bytes, above ${MAX_READER_BUFFER}`);
    }
    if (pending === 0) {
      // Parsed in place: the stream offset of chunk[start] is where the last chunk ended.
      this.#base += this.#end - start;
      this.#buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      this.#start = start;
      this.#end = end;
      this.#owned = false;
      return;
    }
    const bytes = start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end);
    const needed = pending + length;
    if (this.#owned && this.#end + length <= this.#buf.length) {
      this.#buf.set(bytes, this.#end);
      this.#end += length;
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
    this.#buf.set(bytes, this.#end);
    this.#end += length;
  }

  /** The next whole message, or incomplete (push more), or corrupt (close the stream). */
  next(): ReadResult {
    if (this.#corrupt !== undefined) return this.#corrupt;
    if (this.#start === this.#end) return INCOMPLETE;
    const whole = this.#wholeFrame();
    if (whole !== undefined) return whole;
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
   * The common message, a single complete frame that is all there and valid, decoded in place:
   * decodeMessage over a view of the buffer gives the same message (its checks all pass here),
   * at the cost of a view of the buffer, a frame object and two option objects per request.
   * Anything else (several frames, a bad or missing byte) is left to decodeMessage.
   */
  #wholeFrame(): ReadResult | undefined {
    const buf = this.#buf;
    const at = this.#start;
    const end = at + FRAME_HEADER_SIZE + ((buf[at + 12]! << 8) | buf[at + 13]!);
    if (
      end > this.#end ||
      buf[at] !== PROTO_HI ||
      buf[at + 1] !== PROTO_LO ||
      buf[at + 4] !== this.#isResponse ||
      buf[at + 9] !== OP_CLASS_USER ||
      buf[at + 10]! > MAX_OPERATION ||
      buf[at + 11] !== 1 ||
      end - at - FRAME_HEADER_SIZE > MAX_FRAME_DATA
    ) {
      return undefined;
    }
    const uid = ((buf[at + 5]! << 24) | (buf[at + 6]! << 16) | (buf[at + 7]! << 8) | buf[at + 8]!) >>> 0;
    if (buf !== viewed) {
      // A typed array's buffer getter is a call into the runtime: once per buffer, not per
      // message, nor per reader (the socket pump reads every connection into one buffer).
      viewed = buf;
      viewedMemory = buf.buffer;
    }
    const payload = Buffer.from(viewedMemory!, buf.byteOffset + at + FRAME_HEADER_SIZE, end - at - FRAME_HEADER_SIZE);
    this.#start = end;
    return { kind: 'ok', value: { isResponse: this.#isResponse === 1, uid, operation: buf[at + 10] as Operation, payload, frames: 1 } };
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
