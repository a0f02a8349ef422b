// Commands for a standalone Redis whose bytes we encode ourselves, many in one buffer, and hand to
// ioredis in one write (dc_server's request batches, src/cache/redis_batch). An ioredis command
// made the usual way costs more than our whole answer: its arguments are flattened and checked,
// its bytes assembled from a string per argument, it is written on its own and its reply goes
// through a promise. Here every command of a batch is an ioredis Command still (ioredis keeps
// the order of replies, fails what is in flight when the connection drops, refuses what comes
// while it is down), but without arguments: the first carries the RESP of the whole batch, the
// others none, and each reply or error goes straight to the caller's function.
//
// Standalone only: a cluster client routes a command by the slot of its keys, which these have not.

import { Command, type Redis } from 'ioredis';

const CRLF = 0x0d0a;
const EMPTY = Buffer.alloc(0);

/** One argument of a command: bytes, or a string of ASCII (a number, a flag): its length is its size. */
export type Argument = Buffer | string;

/** What a command's reply goes to: the parsed reply (bulk and simple strings as Buffers, integers
 * as numbers, arrays as arrays, nil as null), or the error Redis or the connection gave. */
export interface ReplySink {
  reply(value: unknown): void;
  error(error: Error): void;
}

class EncodedCommand extends Command {
  #bytes: Buffer;

  constructor(name: string, bytes: Buffer, sink: ReplySink) {
    super(name);
    this.#bytes = bytes;
    // Set by Command's constructor to settle its promise, which nobody awaits here.
    this.resolve = (value: unknown) => sink.reply(value);
    this.reject = (error: Error) => sink.error(error);
  }

  override toWritable(): Buffer {
    return this.#bytes;
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

  /** Issues every command on `client`: the first writes the whole batch, the others an empty
   * buffer (cork the socket around it, so those cost no write of their own). A client that is
   * not connected refuses each command: its sink is told at once. */
  send(client: Redis): void {
    const bytes = Buffer.allocUnsafe(this.#length);
    let at = 0;
    for (const { name, args } of this.#commands) {
      at = writeHeader(bytes, at, '*', args.length + 1);
      at = writeBulk(bytes, at, name);
      for (const arg of args) at = writeBulk(bytes, at, arg);
    }
    this.#commands.forEach(({ name, sink }, i) => void client.sendCommand(new EncodedCommand(name, i === 0 ? bytes : EMPTY, sink)));
  }
}

/** Bytes of `*n\r\n` or `$n\r\n`. */
function headerLength(n: number): number {
  return 3 + String(n).length;
}

function bulkLength(length: number): number {
  return headerLength(length) + length + 2;
}

function writeHeader(bytes: Buffer, at: number, kind: '*' | '$', n: number): number {
  at += bytes.write(kind, at, 'latin1');
  at += bytes.write(String(n), at, 'latin1');
  return bytes.writeUInt16BE(CRLF, at);
}

function writeBulk(bytes: Buffer, at: number, arg: Argument): number {
  at = writeHeader(bytes, at, '$', arg.length);
  at += typeof arg === 'string' ? bytes.write(arg, at, 'latin1') : arg.copy(bytes, at);
  return bytes.writeUInt16BE(CRLF, at);
}
