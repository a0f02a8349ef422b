// The reference model of the C dc_server's session semantics, by the letter and in linear time:
// the SessionStore contract test compares every store with it, and the Redis backend's
// model-based test (test/system/dc_server_redis_model.test.ts) compares dc_server on Redis.

import type { SessionStore, StoredSession } from '../../../src/cache/stores/session_store';

interface Stored {
  readonly key: string;
  readonly data: Buffer;
  readonly expiry: number;
  readonly seq: number;
}

/** The semantics by the letter, in linear time: strict expiry, duplicates refused, a full cache
 * evicting max(1, floor(capacity / 30)) soonest-expiring sessions (ties: first added). */
export class ReferenceStore implements Omit<SessionStore, 'stats'> {
  readonly #capacity: number;
  #sessions: Stored[] = [];
  #seq = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  #live(now: number): Stored[] {
    this.#sessions = this.#sessions.filter((s) => !(now > s.expiry));
    return this.#sessions;
  }

  #find(now: number, id: Uint8Array): Stored | undefined {
    const key = Buffer.from(id).toString('hex');
    return this.#live(now).find((s) => s.key === key);
  }

  add(now: number, id: Uint8Array, data: Uint8Array, timeoutMs: number): boolean {
    if (this.#find(now, id) !== undefined) return false;
    if (this.#capacity > 0 && this.#sessions.length >= this.#capacity) {
      const order = [...this.#sessions].sort((a, b) => a.expiry - b.expiry || a.seq - b.seq);
      const evicted = new Set(order.slice(0, Math.max(1, Math.floor(this.#capacity / 30))));
      this.#sessions = this.#sessions.filter((s) => !evicted.has(s));
    }
    this.#sessions.push({ key: Buffer.from(id).toString('hex'), data: Buffer.from(data), expiry: now + timeoutMs, seq: this.#seq++ });
    return true;
  }

  get(now: number, id: Uint8Array): Buffer | undefined {
    const found = this.#find(now, id);
    return found === undefined ? undefined : Buffer.from(found.data);
  }

  remove(now: number, id: Uint8Array): boolean {
    const found = this.#find(now, id);
    this.#sessions = this.#sessions.filter((s) => s !== found);
    return found !== undefined;
  }

  have(now: number, id: Uint8Array): boolean {
    return this.#find(now, id) !== undefined;
  }

  size(now: number): number {
    return this.#live(now).length;
  }

  entries(now: number): StoredSession[] {
    return this.#live(now).map((s) => ({ id: Buffer.from(s.key, 'hex'), data: Buffer.from(s.data), expiresAt: s.expiry }));
  }

  close(): Promise<void> {
    this.#sessions = [];
    return Promise.resolve();
  }
}
