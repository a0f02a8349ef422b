// A TypeScript distcache client: what libdistcache does for Apache, for our tests, benchmarks and
// dc_client. One connection (TCP, a unix socket, or any Duplex), many requests in flight, each
// response matched to the oldest outstanding request by uid and operation (the server answers in
// order; anything else is a protocol error and fails every outstanding request).
//
// How answers read: add() returns the status byte (Status.OK, Status.ADD_*); have()/remove() are
// true for 0x00 and false for 0x01; get() returns the data, or null for a miss, which on the wire is
// the single byte 0x01 (so a stored one-byte value 0x01 also reads as null; libdistcache goes
// further and takes any answer under 5 bytes as a miss). An empty answer (dc_client with no server)
// or 0x02 (dc_client lost its server with the request outstanding) rejects with code
// 'cache-unavailable'.

import net from 'node:net';
import type { Duplex } from 'node:stream';
import { DistkitError } from '../errors';
import { encodeAddPayload, encodeMessage, MessageReader, Operation, OPERATION_NAMES, Status } from './wire/index';

export type CacheTarget = { readonly host: string; readonly port: number } | { readonly path: string } | Duplex;

export interface CacheClientOptions {
  /** Give up connecting after this long (ms). Default 10000. */
  readonly connectTimeoutMs?: number;
}

interface Outstanding {
  readonly uid: number;
  readonly operation: Operation;
  resolve(payload: Buffer): void;
  reject(error: Error): void;
}

type Bytes = Uint8Array | string;

function bytesOf(value: Bytes): Uint8Array {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

export class CacheClient {
  readonly #stream: Duplex;
  readonly #reader = new MessageReader('response');
  readonly #queue: Outstanding[] = [];
  #head = 0;
  #nextUid = 1;
  #failure: Error | undefined;
  #corked = false;
  readonly #closed: Promise<void>;

  private constructor(stream: Duplex) {
    this.#stream = stream;
    this.#closed = new Promise((resolve) => stream.once('close', resolve));
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => this.#fail(new DistkitError('cache-disconnected', 'distcache server closed the connection with requests outstanding')));
    stream.on('close', () => this.#fail(new DistkitError('cache-disconnected', 'distcache connection closed with requests outstanding')));
    stream.on('error', (error: Error) => this.#fail(new DistkitError('cache-disconnected', `distcache connection failed: ${error.message}`, { cause: error })));
  }

  /** Connects (TCP with TCP_NODELAY, or a unix socket) or adopts an already-connected Duplex. */
  static async connect(target: CacheTarget, options: CacheClientOptions = {}): Promise<CacheClient> {
    if (isStream(target)) return new CacheClient(target);
    const where = 'host' in target ? `${target.host}:${target.port}` : `unix:${target.path}`;
    const socket = 'host' in target ? net.connect({ host: target.host, port: target.port, noDelay: true }) : net.connect({ path: target.path });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new DistkitError('cache-connect', `Cannot connect to distcache server ${where}: no answer in ${options.connectTimeoutMs ?? 10000} ms`));
      }, options.connectTimeoutMs ?? 10000);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new DistkitError('cache-connect', `Cannot connect to distcache server ${where}: ${error.code ?? error.message}`, { cause: error }));
      });
    });
    return new CacheClient(socket);
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Sends one request and resolves with a copy of the response payload. */
  request(operation: Operation, payload: Uint8Array): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const uid = this.#nextUid;
    this.#nextUid = (this.#nextUid + 1) >>> 0;
    const bytes = encodeMessage({ isResponse: false, uid, operation }, payload);
    return new Promise((resolve, reject) => {
      this.#queue.push({ uid, operation, resolve, reject });
      // Requests issued in the same tick leave in one writev instead of one syscall each.
      if (!this.#corked) {
        this.#corked = true;
        this.#stream.cork();
        process.nextTick(() => {
          this.#corked = false;
          this.#stream.uncork();
        });
      }
      this.#stream.write(bytes);
    });
  }

  async add(id: Bytes, data: Bytes, timeoutMs: number): Promise<Status> {
    const payload = encodeAddPayload({ timeoutMs, id: bytesOf(id), data: bytesOf(data) });
    const answer = await this.request(Operation.ADD, payload);
    if (answer.length !== 1) throw unavailable(answer, 'ADD');
    return answer[0] as Status;
  }

  /** The data, or null for a miss (the one-byte answer 0x01). */
  async get(id: Bytes): Promise<Buffer | null> {
    const answer = await this.request(Operation.GET, bytesOf(id));
    if (answer.length === 0) throw unavailable(answer, 'GET');
    return answer.length === 1 && answer[0] === Status.NOTOK ? null : answer;
  }

  async remove(id: Bytes): Promise<boolean> {
    return yesNo(await this.request(Operation.REMOVE, bytesOf(id)), 'REMOVE');
  }

  async have(id: Bytes): Promise<boolean> {
    return yesNo(await this.request(Operation.HAVE, bytesOf(id)), 'HAVE');
  }

  /** Half-closes, waits for the outstanding responses and the server's close. */
  async close(): Promise<void> {
    this.#stream.end();
    await this.#closed;
  }

  /** Closes at once; outstanding requests reject. */
  destroy(): void {
    this.#fail(new DistkitError('cache-disconnected', 'distcache client destroyed with requests outstanding'));
    this.#stream.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#reader.push(chunk);
    for (;;) {
      const next = this.#reader.next();
      if (next.kind === 'incomplete') return;
      if (next.kind === 'corrupt') {
        return this.#protocolError(`malformed response at byte ${next.offset}: ${next.reason}`);
      }
      const waiting = this.#queue[this.#head];
      const { uid, operation, payload } = next.value;
      if (waiting === undefined) return this.#protocolError(`unsolicited response uid=${uid}`);
      if (waiting.uid !== uid || waiting.operation !== operation) {
        return this.#protocolError(
          `response uid=${uid} op=${OPERATION_NAMES[operation]} does not match the oldest request uid=${waiting.uid} op=${OPERATION_NAMES[waiting.operation]}`,
        );
      }
      this.#queue[this.#head++] = undefined as unknown as Outstanding;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#head);
        this.#head = 0;
      }
      // Copy: the payload may be a view into the reader's buffer.
      waiting.resolve(Buffer.from(payload));
    }
  }

  #protocolError(message: string): void {
    this.#fail(new DistkitError('cache-protocol', `distcache protocol error: ${message}`));
    this.#stream.destroy();
  }

  #fail(error: Error): void {
    if (this.#failure === undefined) this.#failure = error;
    const waiting = this.#queue.slice(this.#head);
    this.#queue.length = 0;
    this.#head = 0;
    for (const w of waiting) w.reject(this.#failure);
  }
}

function isStream(target: CacheTarget): target is Duplex {
  return typeof (target as Duplex).pipe === 'function';
}

function unavailable(answer: Buffer, what: string): DistkitError {
  return new DistkitError(
    'cache-unavailable',
    `distcache ${what} got ${answer.length === 0 ? 'an empty answer (proxy without a server)' : `the answer ${answer.toString('hex')}`}: the cache is unreachable`,
  );
}

function yesNo(answer: Buffer, what: string): boolean {
  if (answer.length === 1 && answer[0] === Status.OK) return true;
  if (answer.length === 1 && answer[0] === Status.NOTOK) return false;
  throw unavailable(answer, what);
}
