// The accumulation buffer under the request and response decoders: bytes arrive in arbitrary
// chunks, packets are decoded in place, consumed bytes are dropped. It grows only to what the
// packet being decoded needs (its header already passed the length limits), so a peer cannot
// make it hold more than one bounded packet plus one read chunk.

import { decodePacket, type Decoded, type Packet, type Token, type WireLimits } from './tokens';

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
    } else if (result.kind === 'incomplete' && this.#end + result.needed > this.#buf.length) {
      // Make room for exactly the rest of this packet now: one copy instead of repeated growth.
      this.#reserve(result.needed);
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
