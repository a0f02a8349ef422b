// The bytes under the request and response decoders: they arrive in arbitrary chunks and are
// kept as the chunks they came in, not gathered into one growing buffer. A packet body that lies
// within one chunk is returned as a view of it (no copy); one that spans chunks is copied once,
// into a buffer of exactly its length, when its last byte has arrived. A pump request is some
// hundred KB of file bodies in a few 64 KiB reads: gathering them and then copying each body out
// was the largest part of what a cached protocol-3 job cost the server.
//
// Bounded: nothing is allocated for a body before all of it has arrived (a 12-byte header
// announcing a 256 MiB DOTI costs nothing), and the chunks kept are those holding bytes not yet
// consumed. Small chunks (a peer trickling bytes) are gathered into a shared staging buffer, so
// a million 1-byte reads cost a few KB of bookkeeping, not a million buffers.
//
// The chunks are kept, not copied: the caller must not change a chunk after appending it (a
// socket's 'data' chunks are fresh buffers, never reused). Bodies stay valid for good.

import { decodeHeader, HEADER_LENGTH, kindOf, type Decoded, type Packet, type Token, type WireLimits } from './tokens';

/** A chunk smaller than this is copied into the staging buffer rather than kept as it is. */
export const SMALL_CHUNK = 1024;
/** Size of one staging buffer for small chunks. */
const STAGE_SIZE = 16 * 1024;

export class PacketBuffer {
  /** Chunks with bytes not yet consumed; the first one from #offset. */
  #chunks: Buffer[] = [];
  #offset = 0;
  #pending = 0;
  /** The staging buffer and how much of it is used; the last chunk is a view of it while it grows. */
  #stage: Buffer | undefined;
  #staged = 0;
  #stageIsLast = false;
  readonly #header = Buffer.alloc(HEADER_LENGTH);
  readonly #limits: WireLimits;

  constructor(limits: WireLimits) {
    this.#limits = limits;
  }

  /** Bytes received but not yet consumed. */
  get pending(): number {
    return this.#pending;
  }

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#pending += chunk.length;
    if (chunk.length >= SMALL_CHUNK) {
      this.#chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.#stageIsLast = false;
      return;
    }
    // Only bytes past #staged are written: views already handed out or queued never change.
    if (this.#stage === undefined || this.#staged + chunk.length > this.#stage.length) {
      this.#stage = Buffer.allocUnsafeSlow(STAGE_SIZE);
      this.#staged = 0;
      this.#stageIsLast = false;
    }
    this.#stage.set(chunk, this.#staged);
    const from = this.#stageIsLast ? this.#staged - this.#chunks[this.#chunks.length - 1]!.length : this.#staged;
    this.#staged += chunk.length;
    const view = this.#stage.subarray(from, this.#staged);
    if (this.#stageIsLast) this.#chunks[this.#chunks.length - 1] = view;
    else this.#chunks.push(view);
    this.#stageIsLast = true;
  }

  /** Decodes the next packet if it is complete; its body is a view of a chunk or a copy of its parts. */
  next(expected: readonly Token[]): Decoded<Packet> {
    // The header is read where it lies when it lies in the first chunk (the usual case): a view
    // per packet would cost more than decoding it.
    const first = this.#chunks[0];
    const inFirst = first !== undefined && first.length - this.#offset >= HEADER_LENGTH;
    const header = inFirst ? decodeHeader(first, this.#offset, expected, this.#limits) : decodeHeader(this.#peekHeader(), 0, expected, this.#limits);
    if (header.kind !== 'ok') return header;
    const { token, param } = header.value;
    if (kindOf(token) === 'integer') {
      this.#take(HEADER_LENGTH);
      return { kind: 'ok', value: { token, param }, next: HEADER_LENGTH };
    }
    const total = HEADER_LENGTH + param;
    if (this.#pending < total) return { kind: 'incomplete', needed: total - this.#pending };
    this.#take(HEADER_LENGTH);
    return { kind: 'ok', value: { token, param, body: this.#take(param) }, next: total };
  }

  /** Up to HEADER_LENGTH unconsumed bytes, gathered from the chunks they lie in. */
  #peekHeader(): Buffer {
    const wanted = Math.min(HEADER_LENGTH, this.#pending);
    let filled = 0;
    let from = this.#offset;
    for (const chunk of this.#chunks) {
      filled += chunk.copy(this.#header, filled, from, Math.min(chunk.length, from + wanted - filled));
      from = 0;
      if (filled === wanted) break;
    }
    return this.#header.subarray(0, wanted);
  }

  /** Consumes `n` bytes (all received): a view when they lie in the first chunk, else one copy. */
  #take(n: number): Buffer {
    this.#pending -= n;
    const first = this.#chunks[0];
    if (first === undefined || n === 0) return Buffer.alloc(0);
    if (first.length - this.#offset >= n) {
      const view = first.subarray(this.#offset, this.#offset + n);
      this.#advance(first, n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const part = Math.min(chunk.length - this.#offset, n - filled);
      chunk.copy(out, filled, this.#offset, this.#offset + part);
      filled += part;
      this.#advance(chunk, part);
    }
    return out;
  }

  /** Moves past `n` bytes of the first chunk, dropping it once consumed. */
  #advance(first: Buffer, n: number): void {
    this.#offset += n;
    if (this.#offset < first.length) return;
    this.#chunks.shift();
    this.#offset = 0;
    if (this.#chunks.length === 0) this.#stageIsLast = false;
  }
}
