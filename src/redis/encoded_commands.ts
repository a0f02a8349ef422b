// Commands whose bytes we encode ourselves, many in one buffer, and hand to an ioredis connection
// in one write (dc_server's request batches, src/cache/redis_batch: a standalone Redis's, or one
// master's part of a cluster's). An ioredis command made the usual way costs more than our whole
// answer: its arguments are flattened and checked, its bytes assembled from a string per
// argument, it is written on its own and its reply goes through a promise. Here the batch is one
// write, and each command only an entry in the connection's queue of commands awaiting a reply
// (ioredis's public commandQueue, as sendCommand leaves it): ioredis still reads the replies,
// gives each to the entry at the head of the queue, in order, and fails every entry left when
// the connection drops. The entry hands its reply or error straight to the caller's sink.
//
// The connection must be made with autoResendUnfulfilledCommands: false (src/redis/redis_connection
// does): an entry has no bytes of its own to write again on a new connection, and replies must
// never be paired with another batch's commands.

import type { Redis } from 'ioredis';

type CommandItem = Redis['commandQueue'] extends { push(item: infer T): unknown } ? T : never;

const CRLF = 0x0d0a;

/** One argument of a command: bytes, or a string of ASCII (a number, a flag): its length is its size. */
export type Argument = Buffer | string;

/** What a command's reply goes to: the parsed reply (bulk and simple strings as Buffers, integers
 * as numbers, arrays as arrays, nil as null), or the error Redis or the connection gave. */
export interface ReplySink {
  reply(value: unknown): void;
  error(error: Error): void;
}

/** A command's entry in the connection's queue: what ioredis's reader and its flushQueue call. */
class QueuedReply {
  readonly name: string;
  readonly args: readonly Argument[] = [];
  readonly #sink: ReplySink;

  constructor(name: string, sink: ReplySink) {
    this.name = name;
    this.#sink = sink;
  }

  resolve(value: unknown): void {
    this.#sink.reply(value);
  }

  reject(error: Error): void {
    this.#sink.error(error);
  }
}

/** The commands of one batch: added in order, then sent in one write. */
export class EncodedBatch {
  readonly #commands: { name: string; args: readonly Argument[]; sink: ReplySink }[] = [];
  #length = 0;

  /** Adds the command `name` with `args`; `sink` gets its reply. */
  add(name: string, args: readonly Argument[], sink: ReplySink): void {
    this.#commands.push({ name, args, sink });
    this.#length += headerLength(args.length + 1) + bulkLength(name.length);
    for (const arg of args) this.#length += bulkLength(arg.length);
  }

  /** Writes every command on `client` in one write and queues an entry per command for its
   * reply. A client that is not ready (connecting, reconnecting, closed) refuses them all: each
   * sink is told at once, as ioredis tells a command without an offline queue. */
  send(client: Redis): void {
    const stream = client.stream as Redis['stream'] | undefined;
    if (client.status !== 'ready' || stream?.writable !== true) {
      const error = new Error("Stream isn't writeable and enableOfflineQueue options is false");
      for (const { sink } of this.#commands) sink.error(error);
      return;
    }
    const bytes = Buffer.allocUnsafe(this.#length);
    let at = 0;
    for (const { name, args } of this.#commands) {
      at = writeHeader(bytes, at, 0x2a, args.length + 1);
      at = writeBulk(bytes, at, name);
      for (const arg of args) at = writeBulk(bytes, at, arg);
    }
    stream.write(bytes);
    const select = client.options.db ?? 0;
    for (const { name, sink } of this.#commands) client.commandQueue.push({ command: new QueuedReply(name, sink), select } as unknown as CommandItem);
  }
}

/** Bytes of `*n\r\n` or `$n\r\n`. */
function headerLength(n: number): number {
  return 3 + digits(n);
}

function bulkLength(length: number): number {
  return headerLength(length) + length + 2;
}

function digits(n: number): number {
  let count = 1;
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) count++;
  return count;
}

/** Writes `*n\r\n` (kind 0x2a) or `$n\r\n` (kind 0x24) at `at`, the digits one byte at a time
 * (a number made a string, then written, cost more than the rest of a short command). */
function writeHeader(bytes: Buffer, at: number, kind: number, n: number): number {
  bytes[at++] = kind;
  const end = at + digits(n);
  for (let i = end - 1, rest = n; i >= at; i--, rest = Math.floor(rest / 10)) bytes[i] = 0x30 + (rest % 10);
  return bytes.writeUInt16BE(CRLF, end);
}

function writeBulk(bytes: Buffer, at: number, arg: Argument): number {
  at = writeHeader(bytes, at, 0x24, arg.length);
  at += typeof arg === 'string' ? bytes.write(arg, at, 'latin1') : arg.copy(bytes, at);
  return bytes.writeUInt16BE(CRLF, at);
}
