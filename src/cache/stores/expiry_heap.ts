// A binary min-heap of sessions ordered by (expiry, insertion seq): the top is the session that
// expires soonest, and among equal expiries the one added first, which is exactly the order the
// C server's sorted array kept. Each entry remembers its index, so removing any session (REMOVE,
// a replaced duplicate) is O(log n) too.

export interface HeapEntry {
  readonly expiry: number;
  readonly seq: number;
  /** Position in the heap array; -1 once removed. */
  index: number;
}

function before(a: HeapEntry, b: HeapEntry): boolean {
  return a.expiry < b.expiry || (a.expiry === b.expiry && a.seq < b.seq);
}

export class ExpiryHeap<T extends HeapEntry> {
  #items: T[] = [];
  /** Sift steps taken so far: lets tests prove the per-operation cost is logarithmic. */
  #steps = 0;

  get size(): number {
    return this.#items.length;
  }

  get steps(): number {
    return this.#steps;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(entry: T): void {
    entry.index = this.#items.length;
    this.#items.push(entry);
    this.#up(entry.index);
  }

  pop(): T | undefined {
    const top = this.#items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  remove(entry: T): void {
    const i = entry.index;
    const items = this.#items;
    if (i < 0 || items[i] !== entry) return;
    const last = items.pop()!;
    entry.index = -1;
    if (i === items.length) return;
    items[i] = last;
    last.index = i;
    this.#up(i);
    this.#down(last.index);
  }

  clear(): void {
    for (const e of this.#items) e.index = -1;
    this.#items = [];
  }

  #up(i: number): void {
    const items = this.#items;
    const entry = items[i]!;
    while (i > 0) {
      this.#steps++;
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!before(entry, p)) break;
      items[i] = p;
      p.index = i;
      i = parent;
    }
    items[i] = entry;
    entry.index = i;
  }

  #down(i: number): void {
    const items = this.#items;
    const n = items.length;
    const entry = items[i]!;
    for (;;) {
      this.#steps++;
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(items[right]!, items[left]!) ? right : left;
      const c = items[child]!;
      if (!before(c, entry)) break;
      items[i] = c;
      c.index = i;
      i = child;
    }
    items[i] = entry;
    entry.index = i;
  }
}
