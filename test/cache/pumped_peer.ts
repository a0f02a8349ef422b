// What the pumped-session tests (dc_server's and dc_client's) share: a raw peer's connection, a
// request frame, the responses off one socket parsed as they come, a stored session, and a
// bounded wait for a condition.

import assert from 'node:assert/strict';
import net from 'node:net';
import { encodeAddPayload, encodeMessage, MessageReader, Operation, Status } from '../../src/cache/wire/index';

export function request(uid: number, operation: Operation, payload: Buffer): Buffer {
  return encodeMessage({ isResponse: false, uid, operation }, payload);
}

export interface Response {
  readonly uid: number;
  readonly length: number;
  readonly status: number;
  readonly payload: Buffer;
}

/** Responses off one socket, parsed as they come, and whether the peer ended its side. */
export class Responses {
  readonly #reader = new MessageReader('response');
  readonly #got: Response[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#reader.push(chunk);
      for (let next = this.#reader.next(); next.kind === 'ok'; next = this.#reader.next()) {
        const { uid, payload } = next.value;
        this.#got.push({ uid, length: payload.length, status: payload[0]!, payload: Buffer.from(payload) });
      }
      this.#wake?.();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  /** The next `count` responses: uid, payload (a copy), its length and first byte. */
  async take(count: number): Promise<Response[]> {
    while (this.#got.length < count) await new Promise<void>((resolve) => (this.#wake = resolve));
    return this.#got.splice(0, count);
  }

  /** Resolves once the peer has ended its side. */
  async end(): Promise<void> {
    while (!this.#ended) await new Promise<void>((resolve) => (this.#wake = resolve));
  }
}

/** Polls `check` until it holds; fails the test after 10 s. */
export async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    assert.ok(Date.now() < deadline, 'condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A half-open-capable connection to `target`, once connected. */
export async function connectPeer(target: net.NetConnectOpts): Promise<net.Socket> {
  const socket = net.connect({ ...target, allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Stores session `id` with `data` through `target` on a connection of its own, then closes it. */
export async function storeSession(target: net.NetConnectOpts, id: Buffer, data: Buffer): Promise<void> {
  const socket = await connectPeer(target);
  const answers = new Responses(socket);
  socket.write(request(1, Operation.ADD, encodeAddPayload({ timeoutMs: 600_000, id, data })));
  const [added] = await answers.take(1);
  assert.equal(added!.status, Status.OK);
  socket.destroy();
}

/** Once `count` has grown past `from` and then stopped growing (100 ms without change): that value. */
export async function whenSteady(count: () => number, from: number): Promise<number> {
  await until(() => count() > from);
  let seen = -1;
  while (seen !== count()) {
    seen = count();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return seen;
}

/** Reads the answers to `count` GETs of a `size`-byte session, uids 0.. in order, after resuming
 * a socket that had paused reading them. */
export async function takeFlood(socket: net.Socket, count: number, size: number): Promise<void> {
  const answers = new Responses(socket);
  socket.resume();
  const got = await answers.take(count);
  got.forEach((r, i) => {
    assert.equal(r.uid, i);
    assert.equal(r.length, size);
  });
}
