// Connected sockets served by the native socket pump (src/native/spawn/socket_pump.c) instead of
// Node's streams: the addon polls them on the loop's own libuv, reads into one arena and enters
// JavaScript once per loop turn with every read. What the handlers write during that call
// (append, end) is gathered into one area and handed to C in one call when it returns, not one
// call per socket; outside of it commit() sends once the microtasks queued so far have run, so
// the answers one Redis reply settles leave in one call too.
// This file owns the dispatch from those events to one handler per socket, the handover of an
// accepted net.Socket (its fd duplicated, its stream destroyed before it read a byte), and the
// listening sockets the pump accepts from itself (no net.Socket at all: see listenInPump). It
// knows no protocol.

import net from 'node:net';
import os from 'node:os';
// Named imports: `import * as` wraps the addon in __importStar, whose getters' shared keyed load
// went megamorphic on every call (a write per socket per turn).
import { pumpAdopt, pumpDestroy, pumpEnd, pumpListen, pumpOpen, pumpPause, pumpSend, pumpUnlisten, pumpWrite } from 'distkit-spawn';
import type { PeerAddress } from './connection';

/** Event kinds of socket_pump.c. */
const DATA = 1;
const END = 2;
const ERROR = 3;
const DRAIN = 4;
const CLOSED = 5;
const ACCEPTED = 6;
/** The first of a Redis link's reply kinds (redis_link.c: 7 status, 8 value, 9 refused). */
const REPLY = 7;

/** What a pumped socket tells its owner. */
export interface PumpHandler {
  /** Bytes read: arena[start, end), valid during the call only (the arena is every socket's:
   * no view is made per read). */
  onData(arena: Buffer, start: number, end: number): void;
  /** The peer ended its side (no more onData). */
  onEnd(): void;
  /** Every byte a write() queued has left; reading resumed. */
  onDrain(): void;
  /** The socket failed and is closed (code: 'ECONNRESET', ...). */
  onError(code: string): void;
  /** Closed after end(), once the peer ended too. */
  onClosed(): void;
  /** The owning net.Socket was destroyed: the pumped socket is closed. */
  onGone(): void;
  /** Bytes given to append() were queued rather than taken: stop producing until onDrain. */
  onBlocked?(): void;
  /** A Redis link's reply (src/redis/pumped_link; arena bytes valid during the call only). */
  onReply?(kind: number, arena: Buffer, offset: number, length: number): void;
}

/** A connection the pump accepted itself, as a handler of ServiceOptions.pumped gets it. */
export interface PumpedConnection {
  readonly socket: PumpedSocket;
  readonly peer: PeerAddress;
  /** Serial number within this process, for log lines (conn=N). */
  readonly id: number;
  /** Name of the listener it came from. */
  readonly listener: string;
}

/** Serves one connection the pump accepted, until it is finished: the promise it returns settles
 * then, or, when it returns nothing, it calls `finished` once (a connection per request, as
 * mod_socache_dc makes them, then pays for no promise nor its reactions). */
export type PumpedConnectionHandler = (conn: PumpedConnection, finished: () => void) => Promise<void> | void;

/** Called, during the pump's callback, with each connection a listener accepted: attach() a
 * handler before returning or its input is held (and reading paused) until one is attached. */
export type OnPumpedConnection = (socket: PumpedSocket, peer: PeerAddress) => void;

/** Results of PumpedSocket.write. */
export const WRITTEN = 1;
export const QUEUED = 0;

let sockets: Array<PumpedSocket | undefined> = [];
let arena: Buffer | undefined;
let events: Int32Array | undefined;
/** What append() gathers (the addon's, sent by pumpSend) and the entries [id, offset, length
 * (-1 = end), result] naming it, with the socket of each. */
let out: Buffer | undefined;
let sends: Int32Array | undefined;
const sendSockets: Array<PumpedSocket | undefined> = [];
let sendCount = 0;
let outUsed = 0;
let sendCalls = 0;
/** The pump's callback is running: appends and ends wait for its end (see the top). */
let dispatching = false;
/** pumpOpen failed (another thread of this process has the pump). */
let unavailable = false;
/** What each listener of the pump does with its connections, by listener number. */
const listeners: Array<OnPumpedConnection | undefined> = [];

/** Opens the pump once per process; false when it cannot be (see above). */
function openPump(): boolean {
  if (arena !== undefined) return true;
  if (unavailable) return false;
  try {
    [arena, events, out, sends] = pumpOpen(dispatch);
    return true;
  } catch {
    // One pump per process (its state is the addon's): a worker thread keeps node's streams.
    unavailable = true;
    return false;
  }
}

function dispatch(count: number): void {
  dispatching = true;
  try {
    deliver(count);
  } finally {
    dispatching = false;
    sendGathered();
  }
}

/** Hands each event of the turn to its socket's handler. */
function deliver(count: number): void {
  const ev = events!;
  for (let i = 0; i < count * 4; i += 4) {
    const kind = ev[i + 1]!;
    if (kind === ACCEPTED) {
      accepted(ev[i]!, ev[i + 2]!, ev[i + 3]!);
      continue;
    }
    const socket = sockets[ev[i]!];
    if (socket === undefined) continue;
    const handler = socket.handler;
    if (kind === DATA) handler.onData(arena!, ev[i + 2]!, ev[i + 2]! + ev[i + 3]!);
    else if (kind >= REPLY) handler.onReply!(kind, arena!, ev[i + 2]!, ev[i + 3]!);
    else if (kind === END) handler.onEnd();
    else if (kind === DRAIN) handler.onDrain();
    else {
      socket.forget();
      if (kind === ERROR) handler.onError(errnoName(ev[i + 3]!));
      else if (kind === CLOSED) handler.onClosed();
    }
  }
}

/** Every unix peer (nothing to tell them apart by): one object, not one per connection. */
const UNIX_PEER: PeerAddress = Object.freeze({ kind: 'unix' });

/** A connection a listener took: arena[offset, offset + length) says from where (socket_pump.c). */
function accepted(id: number, offset: number, length: number): void {
  const bytes = arena!;
  const socket = new PumpedSocket(id, new HeldEvents());
  register(socket, id);
  const onConnection = listeners[bytes[offset]!];
  if (onConnection === undefined) return socket.destroy();
  const family = bytes[offset + 1]!;
  const peer: PeerAddress =
    family === 0
      ? UNIX_PEER
      : { kind: 'tcp', address: bytes.toString('latin1', offset + 4, offset + length), port: bytes.readUInt16LE(offset + 2), family: family === 6 ? 'IPv6' : 'IPv4' };
  onConnection(socket, peer);
}

/** Sends what append() and end() gathered, in one call into the addon, and tells each socket's
 * handler what became of its bytes (queued, failed, closed). */
function sendGathered(): void {
  const count = sendCount;
  if (count === 0) return;
  const entries = sends!;
  // A socket destroyed since its entry (its id may be another socket's next turn) sends nothing.
  for (let i = 0; i < count; i++) if (!sendSockets[i]!.alive) entries[4 * i] = -1;
  sendCount = 0;
  outUsed = 0;
  sendCalls++;
  pumpSend(count);
  // What to tell is taken off the entries first: a handler told may append again (from entry 0).
  let told: Array<{ socket: PumpedSocket; ended: boolean; result: number }> | undefined;
  for (let i = 0; i < count; i++) {
    const socket = sendSockets[i]!;
    sendSockets[i] = undefined; // no closed session kept alive by a stale entry
    const ended = entries[4 * i + 2]! < 0;
    const result = entries[4 * i + 3]!;
    if (socket.alive && (ended ? result !== 0 : result !== WRITTEN)) (told ??= []).push({ socket, ended, result });
  }
  if (told !== undefined) for (const { socket, ended, result } of told) socket.settle(ended, result);
}

/** A flush is queued behind the microtasks queued so far (see commitSoon). */
let commitQueued = false;

/** Sends what was gathered outside the pump's callback once the microtasks queued so far have
 * run: the answers a Redis reply settles (every client's of one batch, their promises resolved in
 * one go) are appended one microtask after the other, and leave together in one call into the
 * addon, not one call each. */
function commitSoon(): void {
  if (commitQueued) return;
  commitQueued = true;
  queueMicrotask(commitQueuedNow);
}

function commitQueuedNow(): void {
  commitQueued = false;
  if (!dispatching) sendGathered();
}

function register(socket: PumpedSocket, id: number): void {
  if (id >= sockets.length) sockets = sockets.concat(new Array<undefined>(id + 1 - sockets.length));
  sockets[id] = socket;
}

/** The pump's callback is running now: what append() gathers leaves when it returns, without a
 * commit() (a caller that would schedule one for later can leave it). */
export function inPumpCallback(): boolean {
  return dispatching;
}

/** Whether the pump can serve this thread (it opens on the first call). */
export function pumpAvailable(): boolean {
  return openPump();
}

/**
 * Accepts connections from listening socket `fd` in the pump (it takes the fd: unlistenInPump
 * closes it): each goes to `onConnection` with no net.Socket made. Throws the system's error
 * (code EINVAL: not a listening socket); call pumpAvailable() first.
 */
export function listenInPump(fd: number, onConnection: OnPumpedConnection): number {
  if (!openPump()) throw errnoError(os.constants.errno.ENOSYS, 'listen');
  const listener = pumpListen(fd);
  if (listener < 0) throw errnoError(-listener, 'listen');
  listeners[listener] = onConnection;
  return listener;
}

/** Stops accepting on `listener` and closes its socket. */
export function unlistenInPump(listener: number): void {
  listeners[listener] = undefined;
  pumpUnlisten(listener);
}

/** An Error as Node's own system calls throw them: code 'EADDRINUSE', errno, syscall. */
export function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = errnoName(errno);
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: -errno, syscall });
}

/** What an accepted socket hears before a handler is attached (a connection its pool queued):
 * kept, with reading paused, and told to the handler when it comes. */
class HeldEvents implements PumpHandler {
  readonly held: Array<(handler: PumpHandler) => void> = [];
  socket: PumpedSocket | undefined;
  onData(arena: Buffer, start: number, end: number): void {
    const copy = Buffer.from(arena.subarray(start, end));
    this.held.push((h) => h.onData(copy, 0, copy.length));
    this.socket?.pause(true);
  }
  onEnd(): void {
    this.held.push((h) => h.onEnd());
  }
  onDrain(): void {
    this.held.push((h) => h.onDrain());
  }
  onError(code: string): void {
    this.held.push((h) => h.onError(code));
  }
  onClosed(): void {
    this.held.push((h) => h.onClosed());
  }
  onGone(): void {
    this.held.push((h) => h.onGone());
  }
}

/** The area claim() gives room in (every socket's; opened with the pump). */
export function outputArea(): Buffer {
  return out!;
}

/** Calls into the addon that sent gathered bytes since start (for tests: how answers left). */
export function pumpSendCalls(): number {
  return sendCalls;
}

/** Sockets in the pump now (for tests and status: which path connections took). */
export function pumpedSockets(): number {
  return sockets.reduce((n, s) => (s === undefined ? n : n + 1), 0);
}

/** 'ECONNRESET' for 104, as Node's own socket errors say it. */
export function errnoName(errno: number): string {
  const names = os.constants.errno as Record<string, number>;
  return Object.keys(names).find((name) => names[name] === errno) ?? `errno ${errno}`;
}

/** One socket in the pump. After destroy(), end() returning true, onError, onClosed or onGone,
 * it is gone and its calls do nothing. */
export class PumpedSocket {
  readonly #id: number;
  #handler: PumpHandler;
  #alive = true;

  constructor(id: number, handler: PumpHandler) {
    this.#id = id;
    this.#handler = handler;
    if (handler instanceof HeldEvents) handler.socket = this;
  }

  /** The pump's id of the socket (the addon's calls name it so). */
  get id(): number {
    return this.#id;
  }

  get handler(): PumpHandler {
    return this.#handler;
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** Gives an accepted socket its handler, which first hears what came before (the socket reads
   * again if that paused it). */
  attach(handler: PumpHandler): void {
    const before = this.#handler;
    this.#handler = handler;
    if (!(before instanceof HeldEvents) || before.held.length === 0) return;
    this.pause(false);
    for (const tell of before.held.splice(0)) tell(handler);
  }

  /** The pump closed it (or is about to): its id may name another socket from now on. */
  forget(): void {
    if (!this.#alive) return;
    this.#alive = false;
    sockets[this.#id] = undefined;
  }

  /** Sends bytes[0, length): WRITTEN, QUEUED (stop producing until onDrain), or a failure's
   * code (the socket is closed; no event follows). */
  write(bytes: Buffer, length = bytes.length): number | string {
    if (!this.#alive) return 'EPIPE';
    sendGathered(); // what was appended goes first
    if (!this.#alive) return 'EPIPE';
    const result = pumpWrite(this.#id, bytes, length);
    if (result >= 0) return result;
    this.forget();
    return errnoName(-result);
  }

  /**
   * Adds bytes to what this turn sends (see the top), after what this socket appended before:
   * sent when the pump's callback returns, by commit() outside of it, or at once when the area is
   * full. What becomes of them comes to the handler: onBlocked (queued), onError (failed).
   */
  append(bytes: Buffer): void {
    const at = this.claim(bytes.length);
    if (at >= 0) out!.set(bytes, at);
    else if (this.#alive) this.settle(false, pumpWrite(this.#id, bytes, bytes.length));
  }

  /**
   * Room for `length` more bytes of what this turn sends, after what this socket appended before:
   * their offset in outputArea(), to be filled now (before anything else is appended), or -1
   * when the socket is gone or they would not fit even in an empty area. Sent as append()ed bytes are.
   */
  claim(length: number): number {
    if (!this.#alive) return -1;
    const area = out!;
    if (outUsed + length > area.length || 4 * (sendCount + 1) > sends!.length) {
      sendGathered();
      if (!this.#alive || length > area.length) return -1;
    }
    const at = outUsed;
    const entries = sends!;
    const last = 4 * (sendCount - 1);
    if (sendCount > 0 && sendSockets[sendCount - 1] === this && entries[last + 2]! >= 0) {
      entries[last + 2] += length;
    } else {
      this.#gather(at, length);
    }
    outUsed += length;
    return at;
  }

  /** Sends what append() gathered: when the pump's callback returns if it is running, else once
   * the microtasks queued so far have run (see commitSoon). */
  commit(): void {
    if (!dispatching) commitSoon();
  }

  /** FIN once the queued bytes left, and close when the peer ends: true = closed already,
   * false = onClosed comes later (input meanwhile still arrives as onData). Within the pump's
   * callback it is gathered behind the appended bytes, and onClosed may come when it returns. */
  end(): boolean {
    if (!this.#alive) return true;
    if (dispatching) {
      if (4 * (sendCount + 1) > sends!.length) sendGathered();
      if (!this.#alive) return true;
      this.#gather(0, -1);
      return false;
    }
    sendGathered();
    if (!this.#alive) return true;
    if (pumpEnd(this.#id) === 0) return false;
    this.forget();
    return true;
  }

  /** What a gathered write (or end) became: WRITTEN/QUEUED, -errno, or an end's 1 = closed. */
  settle(ended: boolean, result: number): void {
    if (!this.#alive) return;
    if (ended) {
      if (result === 0) return;
      this.forget();
      return this.#handler.onClosed();
    }
    if (result === WRITTEN) return;
    if (result === QUEUED) return this.#handler.onBlocked?.();
    this.forget();
    this.#handler.onError(errnoName(-result));
  }

  #gather(offset: number, length: number): void {
    const at = 4 * sendCount;
    const entries = sends!;
    entries[at] = this.#id;
    entries[at + 1] = offset;
    entries[at + 2] = length;
    entries[at + 3] = 0;
    sendSockets[sendCount++] = this;
  }

  pause(paused: boolean): void {
    if (this.#alive) pumpPause(this.#id, paused);
  }

  destroy(): void {
    if (!this.#alive) return;
    this.forget();
    pumpDestroy(this.#id);
  }
}

/** The fd under an accepted socket that has read nothing yet, or undefined. */
function adoptableFd(stream: unknown): number | undefined {
  if (!(stream instanceof net.Socket) || stream.destroyed || stream.readableLength > 0 || stream.writableLength > 0) return undefined;
  const handle = (stream as unknown as { _handle?: { fd?: unknown; readStop?: () => number } })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 && typeof handle.readStop === 'function' ? handle.fd : undefined;
}

/**
 * Moves an accepted socket's traffic into the pump: the pump reads and writes a duplicate of its
 * fd, and the net.Socket, no longer reading, stays the connection's owner: destroying it (as the
 * activation layer does after the handler, or a test harness at any time) closes the pumped
 * socket too, and its end() sends the last FIN. Undefined when `stream` is not a plain socket
 * that has read nothing (a pipe pair under inetd, a test's Duplex, a socket already read from).
 */
export function adoptSocket(stream: unknown, handler: PumpHandler, options: { noDelay: boolean }): PumpedSocket | undefined {
  const fd = adoptableFd(stream);
  if (fd === undefined) return undefined;
  const owner = stream as net.Socket;
  if (!openPump()) return undefined;
  // A socket accepted without pauseOnConnect is already reading: stop it before it takes a byte.
  const handle = (owner as unknown as { _handle: { readStop(): number; reading?: boolean } })._handle;
  handle.readStop();
  handle.reading = false;
  const id = pumpAdopt(fd, options.noDelay);
  const socket = new PumpedSocket(id, handler);
  register(socket, id);
  owner.once('close', () => {
    if (sockets[id] !== socket) return;
    socket.destroy();
    handler.onGone();
  });
  return socket;
}
