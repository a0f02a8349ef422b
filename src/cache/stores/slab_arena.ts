// Byte storage for the compact store: session bytes live in large slabs (one off-heap Buffer of
// SLAB_BYTES each, allocated when the previous one is full, so the garbage collector sees a few
// dozen objects however many sessions there are), cut into blocks by size class. A freed block
// goes on its class's free list (the link is written into the block itself) and the next block of
// that class reuses it, so memory freed by expiry and eviction is taken again before any new slab:
// under churn of similar sizes the arena stops growing.
//
// An address is a plain number: slab * SLAB_BYTES + offset. Classes are multiples of 16 bytes up
// to 1 KiB, then 16 steps per doubling (at most 1/16 of a block is rounding).

/** One slab: 4 MiB, so a slab holds thousands of small sessions and a few of the largest. */
export const SLAB_BYTES = 4 * 1024 * 1024;
export const GRAIN = 16;
const FINE_LIMIT = 1024;
const STEPS_PER_DOUBLING = 16;
const NO_BLOCK = -1;

/** The class of a block of `size` bytes (size >= 1). */
function classOf(size: number): number {
  if (size <= FINE_LIMIT) return Math.ceil(size / GRAIN) - 1;
  const k = 31 - Math.clz32(size - 1); // 2^k < size <= 2^(k+1)
  const step = 2 ** k / STEPS_PER_DOUBLING;
  return FINE_LIMIT / GRAIN + (k - 10) * STEPS_PER_DOUBLING + Math.ceil((size - 2 ** k) / step) - 1;
}

/** Bytes of a block of class `c`: the smallest class size that holds the size classOf saw. */
function sizeOfClass(c: number): number {
  const fine = FINE_LIMIT / GRAIN;
  if (c < fine) return (c + 1) * GRAIN;
  const k = 10 + Math.floor((c - fine) / STEPS_PER_DOUBLING);
  return 2 ** k + ((((c - fine) % STEPS_PER_DOUBLING) + 1) * 2 ** k) / STEPS_PER_DOUBLING;
}

export class SlabArena {
  readonly #slabs: Buffer[] = [];
  /** Each slab's ArrayBuffer (allocUnsafeSlow: its own, the slab at offset 0), for copyOut. */
  readonly #memory: ArrayBuffer[] = [];
  /** Free list heads by class (an address, or NO_BLOCK). */
  readonly #free: number[] = [];
  /** Next unused byte of the last slab. */
  #bump = SLAB_BYTES;
  #blockBytes = 0;
  readonly #maxBlock: number;

  /** `maxBlock`: the largest block anyone will ask for (at most SLAB_BYTES). */
  constructor(maxBlock: number) {
    if (!(maxBlock >= 1 && maxBlock <= SLAB_BYTES)) throw new RangeError(`Largest block ${maxBlock} is not in 1..${SLAB_BYTES}`);
    this.#maxBlock = sizeOfClass(classOf(maxBlock));
  }

  /** Bytes a block for `size` bytes takes. */
  static blockSize(size: number): number {
    return sizeOfClass(classOf(size));
  }

  /** Bytes in slabs (what the arena holds from the system, touched or not). */
  get slabBytes(): number {
    return this.#slabs.length * SLAB_BYTES;
  }

  /** Bytes in blocks handed out and not freed. */
  get blockBytes(): number {
    return this.#blockBytes;
  }

  /** Address of a block of at least `size` bytes. */
  allocate(size: number): number {
    if (size > this.#maxBlock) throw new RangeError(`Block of ${size} bytes above the arena's ${this.#maxBlock}`);
    const c = classOf(size);
    const bytes = sizeOfClass(c);
    this.#blockBytes += bytes;
    const head = this.#free[c] ?? NO_BLOCK;
    if (head !== NO_BLOCK) {
      this.#free[c] = this.#readLink(head);
      return head;
    }
    if (this.#bump + bytes > SLAB_BYTES) {
      // The tail of the full slab (less than one block) stays unused.
      const slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.#slabs.push(slab);
      this.#memory.push(slab.buffer);
      this.#bump = 0;
    }
    const address = (this.#slabs.length - 1) * SLAB_BYTES + this.#bump;
    this.#bump += bytes;
    return address;
  }

  /** Gives back the block at `address` that was allocated for `size` bytes. */
  release(address: number, size: number): void {
    const c = classOf(size);
    this.#blockBytes -= sizeOfClass(c);
    this.#writeLink(address, this.#free[c] ?? NO_BLOCK);
    this.#free[c] = address;
  }

  /** The slab holding `address` (index with offsetOf). */
  slabOf(address: number): Buffer {
    return this.#slabs[(address / SLAB_BYTES) | 0]!;
  }

  /**
   * Copies `length` bytes from `offset` in `address`'s slab into `into` at `at`. Through a plain
   * view of the slab's memory: Buffer's copy asks the runtime for the slab's ArrayBuffer and makes
   * a view of its own on every call (a measurable part of answering a GET).
   */
  copyOut(address: number, offset: number, length: number, into: Uint8Array, at: number): void {
    into.set(new Uint8Array(this.#memory[(address / SLAB_BYTES) | 0]!, offset, length), at);
  }

  /** An int32, never a double: a byte index that is a heap number takes V8's slow element path
   * (it made id comparison four times slower). */
  offsetOf(address: number): number {
    return (address % SLAB_BYTES) | 0;
  }

  /** Drops every slab. */
  clear(): void {
    this.#slabs.length = 0;
    this.#memory.length = 0;
    this.#free.length = 0;
    this.#bump = SLAB_BYTES;
    this.#blockBytes = 0;
  }

  #readLink(address: number): number {
    return this.slabOf(address).readDoubleLE(this.offsetOf(address));
  }

  #writeLink(address: number, next: number): void {
    this.slabOf(address).writeDoubleLE(next, this.offsetOf(address));
  }
}
