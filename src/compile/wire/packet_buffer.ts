// The accumulation buffer under the request and response decoders: bytes arrive in arbitrary
// chunks, packets are decoded in place, consumed bytes are dropped. It grows only to what the
// packet being decoded needs (its header already passed the length limits), so a peer cannot
// make it hold more than one bounded packet plus one read chunk, and it never reserves more than
// twice what the peer has actually sent.

import { decodePacket, type Decoded, type Packet, type Token, type WireLimits } from './tokens';

/** Smallest step by which the buffer grows while a packet body is still arriving. */
export const MIN_GROWTH = 64 * 1024;

export class PacketBuffer {
  #buf: Buffer = Buffer.alloc(0);
  #start = 0;
  #end = 0;
  readonly #limits: WireLimits;

  constructor(limits: WireLimits) {
    this.#limits = limits;
  }

  /** Bytes received but not yet consumed. */
  get pending(): number {
    return this.#end - this.#start;
  }

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#end + chunk.length > this.#buf.length) this.#reserve(chunk.length);
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /**
   * Decodes the next packet if it is complete. The body of an ok packet is a view that stays
   * valid until the next call to append or next.
   */
  next(expected: readonly Token[]): Decoded<Packet> {
    const result = decodePacket(this.#buf.subarray(0, this.#end), this.#start, expected, this.#limits);
    if (result.kind === 'ok') {
      this.#start = result.next;
      if (this.#start === this.#end) this.#start = this.#end = 0;
    } else if (result.kind === 'incomplete') {
      // Grow towards the rest of this packet, but never by more than what has arrived (or 64 KiB):
      // a 12-byte header announcing a 256 MiB DOTI must not make us allocate 256 MiB before the
      // peer sends anything (the distcc fuzzer found each such header cost an allocation and a
      // GC). Doubling keeps the copies amortised linear.
      const step = Math.min(result.needed, Math.max(this.pending, MIN_GROWTH));
      if (this.#end + step > this.#buf.length) this.#reserve(step);
    }
    return result;
  }

  #reserve(extra: number): void {
    const live = this.#end - this.#start;
    const wanted = live + extra;
    if (wanted <= this.#buf.length && this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      const grown = Buffer.allocUnsafe(Math.max(wanted, Math.min(this.#buf.length * 2, wanted + 65536), 4096));
      this.#buf.copy(grown, 0, this.#start, this.#end);
      this.#buf = grown;
    }
    this.#start = 0;
    this.#end = live;
  }
}
