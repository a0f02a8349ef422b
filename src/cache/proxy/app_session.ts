// One application connection to dc_client (Apache's mod_socache_dc, libdistcache): read its
// request messages, forward each over the shared Upstream, and write the answers back with the
// application's own uids, in the order it asked (the original serves one request per application
// at a time; ours lets it pipeline up to MAX_PIPELINED and still answers in order).
// An application that leaves with requests outstanding simply loses their answers; nothing else
// is disturbed (the original's multiplexer_mark_dead_client marked every client's items dead).

import type { Connection } from '../../activation/connection';
import type { Logger } from '../../log/index';
import { encodeMessage } from '../wire/frame';
import { MessageReader } from '../wire/message_reader';
import { ADD_PREFIX_SIZE, Operation } from '../wire/constants';
import { DISCONNECTED_PAYLOAD, type Upstream, type UpstreamAnswer, type UpstreamTicket } from './upstream';

/** Requests one application may have outstanding; beyond that its socket is not read. */
export const MAX_PIPELINED = 32;

export interface ProxySessionOptions {
  readonly log: Logger;
  /** Drop a connection with nothing outstanding after this long without a request; 0 = never. */
  readonly idleMs: number;
}

interface Slot {
  readonly uid: number;
  readonly operation: Operation;
  response: Buffer | undefined;
  ticket: UpstreamTicket | undefined;
}

function payloadOf(answer: UpstreamAnswer): Buffer {
  switch (answer.kind) {
    case 'response':
      return answer.payload;
    case 'disconnected':
      return DISCONNECTED_PAYLOAD;
    case 'unavailable':
      // sclient's clients_to_server: no server, so the response carries no data at all.
      return Buffer.alloc(0);
  }
}

/** Serves one application connection until it closes. */
export function serveProxyConnection(conn: Connection, upstream: Upstream, options: ProxySessionOptions): Promise<void> {
  const { stream } = conn;
  const log = options.log.child({ conn: conn.id });
  const reader = new MessageReader('request');
  const slots: Slot[] = [];
  let readEnded = false;
  let finished = false;
  let idleTimer: NodeJS.Timeout | undefined;

  const armIdle = (): void => {
    if (options.idleMs <= 0 || finished) return;
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (slots.length === 0) {
        log.info('idle close', { idle_ms: options.idleMs });
        stream.destroy();
      } else armIdle();
    }, options.idleMs);
  };

  const pump = (): void => {
    if (finished) return;
    // Back-pressure: a full pipeline or an application that does not read its answers stops us
    // reading its socket, so its buffers stay bounded.
    let exhausted = false;
    while (slots.length < MAX_PIPELINED && !stream.writableNeedDrain) {
      const r = reader.next();
      if (r.kind === 'incomplete') {
        exhausted = true;
        break;
      }
      if (r.kind === 'corrupt') {
        log.warning('bad request', { why: r.reason, offset: r.offset });
        finish();
        stream.destroy();
        return;
      }
      const m = r.value;
      if (m.operation === Operation.ADD && m.payload.length < ADD_PREFIX_SIZE) {
        // The cache server closes a connection on such an ADD: forwarded, it would take the
        // shared upstream connection (and every other application's requests) down with it.
        log.warning('bad request', { why: `ADD payload of ${m.payload.length} bytes is shorter than ${ADD_PREFIX_SIZE}` });
        finish();
        stream.destroy();
        return;
      }
      const slot: Slot = { uid: m.uid, operation: m.operation, response: undefined, ticket: undefined };
      slots.push(slot);
      // Copy: the payload may be a view into the reader's buffer and the request may wait in a queue.
      slot.ticket = upstream.send(m.operation, Buffer.from(m.payload), (answer) => {
        slot.response = encodeMessage({ isResponse: true, uid: slot.uid, operation: slot.operation }, payloadOf(answer));
        flush();
      });
      armIdle();
    }
    if (slots.length >= MAX_PIPELINED || stream.writableNeedDrain) stream.pause();
    else if (!readEnded) stream.resume();
    if (readEnded && exhausted && slots.length === 0) {
      // The application half-closed and has every answer: flush and close our side too.
      if (!stream.writableEnded) stream.end();
    }
  };

  const flush = (): void => {
    if (finished) return;
    while (slots.length > 0 && slots[0]!.response !== undefined) {
      stream.write(slots.shift()!.response!);
    }
    pump();
  };

  const finish = (): void => {
    if (finished) return;
    finished = true;
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    for (const s of slots.splice(0)) s.ticket?.cancel();
  };

  return new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      pump();
    });
    stream.on('drain', pump);
    stream.on('end', () => {
      readEnded = true;
      pump();
    });
    stream.on('error', (error: NodeJS.ErrnoException) => {
      log.debug('application connection error', { error: error.code ?? error.message });
    });
    stream.on('close', () => {
      if (slots.length > 0) log.info('application left', { discarded: slots.length });
      finish();
      resolve();
    });
    armIdle();
  });
}
