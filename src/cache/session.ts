// One distcache connection: read request frames, answer each message in order, write the
// responses. Everything the C server got wrong at this layer is handled here:
// - unlimited in-order pipelining with back-pressure: while the peer does not read its responses
//   (the socket's write buffer is above its high-water mark) we stop parsing and stop reading, so
//   a slow reader costs one socket buffer, not our memory (the C server dropped a connection that
//   pipelined behind an ~8 KB GET response);
// - a half-closed peer (shutdown(SHUT_WR) after its requests) gets every response, then FIN;
// - a malformed stream, a wrong protocol version (the C server abort()ed, so a port scanner or an
//   HTTP health check took the whole cache down) or an ADD under 8 bytes closes this connection
//   only, with one log line saying why. Nothing is ever sent back for a bad request;
// - an optional idle bound (ours; the original has none, and Apache and dc_client keep their
//   connections open between requests, so it is off unless asked for): a peer that neither sends
//   a byte nor takes a byte of its responses for idleMs is closed, so silent peers cannot hold
//   file descriptors forever.

import net from 'node:net';
import { describePeer, type Connection } from '../activation/connection';
import type { Answer, CacheEngine } from './engine';
import { MessageReader } from './wire/index';

/** After a bad request: how long we keep discarding the peer's input while our answers leave and
 * we wait for it to close its side (closing earlier would reset it and lose them); then we reset. */
export const DROP_GRACE_MS = 5000;

export type CacheSessionEngine = Pick<CacheEngine, 'answer' | 'log' | 'noteConnection'>;

export interface CacheSessionOptions {
  /** Close a connection after this many ms without progress in either direction; 0 = never (default). */
  readonly idleMs?: number;
}

/** Serves one connection until the peer is done (or is dropped); never rejects. */
export function serveCacheConnection(conn: Connection, engine: CacheSessionEngine, options: CacheSessionOptions = {}): Promise<void> {
  const { stream } = conn;
  const log = engine.log.child({ conn: conn.id });
  if (conn.peer.kind === 'tcp' && stream instanceof net.Socket) stream.setNoDelay(true);
  engine.noteConnection('open');
  log.debug('open', { peer: describePeer(conn.peer) });

  const reader = new MessageReader('request');
  let requests = 0;
  let blocked = false;
  let peerDone = false;
  let closing = false;
  /** Dropped for a bad request: we read and discard until the peer closes (or the grace ends). */
  let dropped = false;

  return new Promise<void>((resolve) => {
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    let idle: NodeJS.Timeout | undefined;
    const idleMs = options.idleMs ?? 0;
    const settle = (why: string): void => {
      if (settled) return;
      settled = true;
      if (grace !== undefined) clearTimeout(grace);
      if (idle !== undefined) clearTimeout(idle);
      stream.off('data', onData);
      stream.off('drain', onDrain);
      stream.off('end', onEnd);
      stream.off('finish', onFinish);
      stream.off('close', onClose);
      // Keep a listener: a late error on a stream we let go of must not crash the process.
      stream.on('error', () => {});
      stream.off('error', onError);
      engine.noteConnection('close');
      log.debug('close', { requests, why });
      resolve();
    };

    const drop = (reason: string, fields: Record<string, number> = {}): void => {
      closing = true;
      dropped = true;
      engine.noteConnection('dropped');
      log.warning('drop', { peer: describePeer(conn.peer), requests, reason, ...fields });
      stream.off('data', onData);
      stream.resume(); // discard what else the peer sends, so its writes do not block
      stream.end();
      grace = setTimeout(() => {
        stream.destroy();
        settle('drop grace over');
      }, DROP_GRACE_MS);
      grace.unref();
    };

    const pump = (): void => {
      if (closing || settled) return;
      let verdict: (() => void) | undefined;
      stream.cork();
      for (;;) {
        if (stream.writableNeedDrain) {
          blocked = true;
          stream.pause();
          break;
        }
        const next = reader.next();
        if (next.kind === 'incomplete') break;
        if (next.kind === 'corrupt') {
          verdict = () => drop(next.reason, { offset: next.offset });
          break;
        }
        let answer: Answer;
        try {
          answer = engine.answer(next.value);
        } catch (error) {
          // A bug answering one request must cost that connection, not every client's cache.
          log.err('answer failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
          answer = { kind: 'close', reason: 'internal error' };
        }
        if (answer.kind === 'close') {
          verdict = () => drop(answer.reason);
          break;
        }
        requests++;
        stream.write(answer.bytes);
      }
      stream.uncork();
      if (verdict !== undefined) return verdict();
      if (!blocked && peerDone) {
        closing = true;
        if (reader.buffered > 0) log.info('truncated', { bytes: reader.buffered });
        stream.end();
      }
    };

    // Progress in either direction (bytes in, or the peer taking our queued responses) re-arms it.
    const armIdle = (): void => {
      if (idleMs <= 0 || settled) return;
      if (idle !== undefined) idle.refresh();
      else {
        idle = setTimeout(() => {
          log.info('idle close', { peer: describePeer(conn.peer), requests, idle_ms: idleMs, buffered: reader.buffered });
          stream.destroy();
          settle('idle');
        }, idleMs);
        idle.unref();
      }
    };

    const onData = (chunk: Buffer): void => {
      armIdle();
      try {
        reader.push(chunk);
      } catch (error) {
        return drop((error as Error).message);
      }
      if (!blocked) pump();
    };
    const onDrain = (): void => {
      armIdle();
      if (!blocked) return;
      blocked = false;
      if (!peerDone) stream.resume();
      pump();
    };
    const onEnd = (): void => {
      peerDone = true;
      if (dropped) {
        if (stream.writableFinished) settle('dropped');
        return;
      }
      if (!blocked) pump();
    };
    const onFinish = (): void => {
      // Everything we wrote has been handed to the kernel. Close only once the peer is done too:
      // closing a socket with unread input sends a reset, and a dropped peer still sending would
      // lose the answers it has not read yet (the grace timer bounds the wait).
      if (peerDone) settle(dropped ? 'dropped' : 'done');
    };
    const onClose = (): void => settle('closed');
    const onError = (error: NodeJS.ErrnoException): void => {
      log.info('error', { peer: describePeer(conn.peer), error: error.code ?? error.message });
      stream.destroy();
      settle('error');
    };

    stream.on('data', onData);
    stream.on('drain', onDrain);
    stream.on('end', onEnd);
    stream.on('finish', onFinish);
    stream.on('close', onClose);
    stream.on('error', onError);
    if (stream.readableEnded) onEnd();
    armIdle();
    stream.resume();
  });
}
