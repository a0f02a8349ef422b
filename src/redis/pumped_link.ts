// dc_server's steady-state Redis pipeline on the native socket pump (src/native/spawn/redis_link.c):
// a connection ioredis made (TCP or unix socket, AUTH and SELECT done, ready) is handed over to
// the pump, which encodes the batch's commands and parses their replies in C; each reply comes
// back in the pump's callback, with every client's data of that turn, as a status byte or a GET's
// value, and one send() carries the batch's commands with the turn's answers. Through ioredis
// each batch cost a net.Socket write, a read with a Buffer per chunk, its JavaScript reply parser
// and a Buffer and a queue entry per reply: about half of dc_server's CPU per request on Redis.
//
// ioredis keeps what it is for: it connects, authenticates, selects the database and reconnects
// (with its back-off) once the link reports the connection lost; its socket, no longer read, stays
// the connection's owner (src/activation/socket_pump's adoptSocket). Nothing is ever sent on the
// donor client itself. TLS (rediss://) stays on ioredis's own path, as does a cluster's traffic.
//
// Requests are written into the link's command area as they come (their bytes are views of the
// client's read buffer, valid during the call only) and leave at send(). Replies come in request
// order, one per request; a connection lost answers every request sent or gathered with the
// error, and none of them is ever paired with another's reply (the connection is not reused).
//
// DISTKIT_REDIS_LINK=off in the environment keeps every request on ioredis (the bench's
// comparison, and a way back should the native path misbehave).

import { linkSend, linkStart } from 'distkit-spawn';
import { Redis, type RedisOptions } from 'ioredis';
import { adoptSocket, errnoName, pumpAvailable, type PumpHandler, type PumpedSocket } from '../activation/socket_pump';

/** Event kinds of redis_link.c. */
export const REPLY_STATUS = 7;
export const REPLY_VALUE = 8;
export const REPLY_ERROR = 9;

/** Entries of six ints per request in the command area: [operation, keyOffset, keyLength,
 * dataOffset, dataLength, px]. */
const ENTRY = 6;

/** Whether requests may take the native path (read once per process). */
const LINK_ENABLED = process.env.DISTKIT_REDIS_LINK !== 'off' && process.env.DISTKIT_CACHE_IO !== 'stream';

/** A request sent on the link: told its reply or the loss of the connection, once. */
export interface LinkWaiter {
  /** kind REPLY_STATUS: `length` is the status byte; REPLY_VALUE: arena[offset, offset+length)
   * is the value (valid during the call only); REPLY_ERROR: the same range is Redis's error line. */
  replied(kind: number, arena: Buffer, offset: number, length: number): void;
  lost(error: Error): void;
}

export class PumpedLink implements PumpHandler {
  readonly #donor: Redis;
  readonly #prefix: Buffer;
  /** A run of lookups goes as one MGET (a standalone Redis; not a cluster master). */
  readonly #mget: boolean;
  #socket: PumpedSocket | undefined;
  #id = -1;
  #cmds: Int32Array | undefined;
  #bytes: Buffer | undefined;
  /** Requests in the command area, not sent yet, and their bytes used. */
  #gathered: LinkWaiter[] = [];
  #used = 0;
  /** Requests sent, awaiting their replies in order (from #head). */
  #waiting: LinkWaiter[] = [];
  #head = 0;
  #closed = false;
  /** Replies handled since start (for tests: which path requests took). */
  replies = 0;

  /** A link on a connection of its own made with `options` (a standalone Redis, not TLS), every
   * key under `prefix`, a run of lookups one MGET when `mget` (not on a cluster: the keys of one
   * command must share a slot); undefined when the pump cannot serve it (see above). */
  static create(options: RedisOptions, prefix: Buffer, mget: boolean, onError: (error: Error) => void): PumpedLink | undefined {
    if (!LINK_ENABLED || options.tls !== undefined || !pumpAvailable()) return undefined;
    return new PumpedLink(options, prefix, mget, onError);
  }

  private constructor(options: RedisOptions, prefix: Buffer, mget: boolean, onError: (error: Error) => void) {
    this.#prefix = prefix;
    this.#mget = mget;
    this.#donor = new Redis({ ...options, enableAutoPipelining: false, commandTimeout: undefined });
    this.#donor.on('error', onError);
    // After the ready check, its reply's read over: the socket is idle and ours from now on.
    this.#donor.on('ready', () => setImmediate(() => this.#adopt()));
  }

  /** Requests gathered or sent and not answered yet. */
  get inFlight(): number {
    return this.#gathered.length + this.#waiting.length - this.#head;
  }

  /** The connection is on the pump: add() and send() take requests. */
  get ready(): boolean {
    return this.#socket !== undefined;
  }

  /** Gathers one request (the key is the session id, without the prefix; `data` and `px` are an
   * ADD's); its bytes are copied now. False when the link is not ready (the caller goes through
   * ioredis). */
  add(operation: number, key: Buffer, data: Buffer | undefined, px: number, waiter: LinkWaiter): boolean {
    if (this.#socket === undefined) return false;
    const size = key.length + (data?.length ?? 0);
    if (this.#gathered.length * ENTRY + ENTRY > this.#cmds!.length || this.#used + size > this.#bytes!.length) {
      this.send();
      if (this.#socket === undefined) return false;
    }
    const bytes = this.#bytes!;
    const at = this.#gathered.length * ENTRY;
    const cmds = this.#cmds!;
    cmds[at] = operation;
    cmds[at + 1] = this.#used;
    cmds[at + 2] = key.length;
    // TypedArray set, not Buffer copy (which makes a view of the source first).
    bytes.set(key, this.#used);
    this.#used += key.length;
    cmds[at + 3] = this.#used;
    cmds[at + 4] = data === undefined ? 0 : data.length;
    if (data !== undefined) {
      bytes.set(data, this.#used);
      this.#used += data.length;
    }
    cmds[at + 5] = px;
    this.#gathered.push(waiter);
    return true;
  }

  /** Sends what was gathered, in one send(). */
  send(): void {
    const gathered = this.#gathered;
    if (gathered.length === 0) return;
    this.#gathered = [];
    this.#used = 0;
    // Requests are gathered only while the socket is ours, and losing it empties #gathered.
    const result = linkSend(this.#id, gathered.length);
    if (result < 0) {
      const error = new Error(`Redis connection lost: ${errnoName(-result)}`);
      for (const waiter of gathered) waiter.lost(error);
      if (result !== -22) this.#lost(error);
      return;
    }
    for (const waiter of gathered) this.#waiting.push(waiter);
  }

  onReply(kind: number, arena: Buffer, offset: number, length: number): void {
    const waiting = this.#waiting;
    const waiter = waiting[this.#head];
    if (waiter === undefined) return; // cannot be: redis_link.c answers only what was sent
    waiting[this.#head++] = undefined as unknown as LinkWaiter;
    if (this.#head === waiting.length) {
      waiting.length = 0;
      this.#head = 0;
    } else if (this.#head >= 4096 && this.#head * 2 >= waiting.length) {
      this.#waiting = waiting.slice(this.#head);
      this.#head = 0;
    }
    this.replies++;
    waiter.replied(kind, arena, offset, length);
  }

  onData(): void {}

  onEnd(): void {
    this.#lost(new Error('Redis connection lost: closed by Redis'));
  }

  onDrain(): void {}

  onError(code: string): void {
    this.#lost(new Error(`Redis connection lost: ${code}`));
  }

  onClosed(): void {
    this.#lost(new Error('Redis connection lost: closed'));
  }

  onGone(): void {
    this.#lost(new Error('Redis connection lost: closed'));
  }

  close(): void {
    this.#closed = true;
    this.#lost(new Error('Redis connection closed'));
    this.#donor.disconnect();
  }

  #adopt(): void {
    if (this.#closed || this.#socket !== undefined || this.#donor.status !== 'ready') return;
    const socket = adoptSocket(this.#donor.stream, this, { noDelay: true });
    if (socket === undefined) return;
    const id = socket.id;
    try {
      [this.#cmds, this.#bytes] = linkStart(id, this.#prefix, this.#mget);
    } catch {
      socket.destroy();
      return;
    }
    this.#socket = socket;
    this.#id = id;
  }

  /** The connection is gone: every request sent or gathered fails, and ioredis connects again
   * (the link takes the new connection once it is ready). */
  #lost(error: Error): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#socket = undefined;
    socket.destroy();
    const waiting = this.#waiting.slice(this.#head);
    const gathered = this.#gathered;
    this.#waiting = [];
    this.#head = 0;
    this.#gathered = [];
    this.#used = 0;
    for (const waiter of waiting) waiter.lost(error);
    for (const waiter of gathered) waiter.lost(error);
    if (!this.#closed) this.#donor.disconnect(true);
  }
}
