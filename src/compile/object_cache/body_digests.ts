// The SHA-256 of each file body of a pump job, as the cache key takes it (./cache_key), remembered
// by the file's name. Every job of a build sends the same system and project headers again, some
// hundred KB of them: hashing them per job was most of what a protocol-3 hit cost. A body is
// compared byte for byte with the one remembered under its name (a memcmp, many times faster than
// SHA-256) before the digest is reused, so the digest is exactly what hashing would give: the
// memo only saves work, it never decides a key. Whether the file names a clock macro (which
// makes a pump job uncacheable) is remembered with it the same way.
//
// The key's framed bytes for the file (name and digest) are remembered with it, so that a key
// writes each remembered file in one piece.
//
// Bounded: the remembered bodies are copies (a body of a request is a view that may pin a larger
// buffer), at most BODY_MEMO_BYTES of them and their framed bytes; past that the oldest names are
// forgotten first.

import { createHash } from 'node:crypto';

/** Bytes of bodies remembered at most. */
export const BODY_MEMO_BYTES = 32 << 20;
/** A body larger than this is hashed every time, not remembered (it would push out many others). */
const BODY_MEMO_MAX = 4 << 20;

/** SHA-256 of `body`. */
export function sha256Of(body: Uint8Array): Buffer {
  return createHash('sha256').update(body).digest();
}

interface Remembered {
  readonly body: Buffer;
  readonly digest: Buffer;
  /** Whether the file's content names a clock macro, once asked (see ObjectCache). */
  clock?: boolean;
  /** What the key writes for this file (its name and digest, framed), once made (see framedOf). */
  framed?: Buffer;
}

export class BodyDigests {
  readonly #byName = new Map<string, Remembered>();
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(options: { readonly maxBytes?: number } = {}) {
    this.#maxBytes = options.maxBytes ?? BODY_MEMO_BYTES;
  }

  /** Bytes of bodies (and their framed bytes) remembered now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** SHA-256 of `body`, the file `name` of a job's tree: the remembered one when `body` is the same bytes. */
  digestOf(name: string, body: Uint8Array): Buffer {
    return this.#remember(name, body).digest;
  }

  /**
   * `frame(digest)`, made once for the file `name` with `body` (the same bytes, so the same
   * digest): the key's bytes for the file, written in one piece instead of field by field.
   */
  framedOf(name: string, body: Uint8Array, frame: (digest: Buffer) => Buffer): Buffer {
    const known = this.#remember(name, body);
    if (known.framed === undefined) {
      known.framed = frame(known.digest);
      if (this.#byName.get(name) === known) {
        this.#bytes += known.framed.byteLength;
        this.#shrinkTo(this.#maxBytes);
      }
    }
    return known.framed;
  }

  /** `search()`, the answer remembered for the file `name` with `body` (the same bytes, so the same content), asked once. */
  mentionsClock(name: string, body: Uint8Array, search: () => boolean): boolean {
    const known = this.#remember(name, body);
    return (known.clock ??= search());
  }

  #remember(name: string, body: Uint8Array): Remembered {
    const known = this.#byName.get(name);
    if (known !== undefined && known.body.equals(body)) return known;
    const digest = sha256Of(body);
    if (known !== undefined) this.#forget(name, known);
    if (body.byteLength > BODY_MEMO_MAX || body.byteLength > this.#maxBytes) return { body: Buffer.alloc(0), digest };
    this.#shrinkTo(this.#maxBytes - body.byteLength);
    const copy = Buffer.allocUnsafeSlow(body.byteLength); // not from the shared pool, which a small copy would pin
    copy.set(body);
    const made: Remembered = { body: copy, digest };
    this.#byName.set(name, made);
    this.#bytes += body.byteLength;
    return made;
  }

  /** Forgets the oldest names until at most `bytes` are remembered. */
  #shrinkTo(bytes: number): void {
    while (this.#bytes > bytes && this.#byName.size > 0) {
      const [oldest, entry] = this.#byName.entries().next().value as [string, Remembered];
      this.#forget(oldest, entry);
    }
  }

  #forget(name: string, entry: Remembered): void {
    this.#byName.delete(name);
    this.#bytes -= entry.body.byteLength + (entry.framed?.byteLength ?? 0);
  }
}
