// One dc_snoop connection: dial the real server, relay raw bytes both ways with back-pressure and
// half-close, and show a FrameTap a copy of every chunk. The relayed chunks are the ones received,
// unmodified and in order: dc_snoop is transparent by construction, whatever the tap thinks.

import net from 'node:net';
import type { Duplex } from 'node:stream';
import { describePeer, type Connection, type ConnectionHandler } from '../../activation/connection';
import type { Logger } from '../../log/index';
import { connectOptionsOf, describeConnectTarget, type ConnectTarget } from '../address';
import { FrameTap } from './frame_tap';

export interface SnoopOptions {
  readonly target: ConnectTarget;
  readonly log: Logger;
  /** Receives each decoded line (dc_snoop prints them on stdout). */
  readonly print: (line: string) => void;
}

function relay(from: Duplex, to: Duplex, tap: FrameTap, print: (line: string) => void, prefix: string): void {
  from.on('data', (chunk: Buffer) => {
    for (const line of tap.push(chunk)) print(`${prefix} ${line}`);
  });
  // pipe() forwards the same chunk objects, pauses on a full destination and ends it on EOF.
  from.pipe(to);
}

/** The ConnectionHandler dc_snoop runs (and the tests run): every client relayed to `target`. */
export function snoopHandler(options: SnoopOptions): ConnectionHandler {
  return (conn) => serveSnoopConnection(conn, options);
}

/** Serves one client connection through to the server; resolves when both sides are closed. */
async function serveSnoopConnection(conn: Connection, options: SnoopOptions): Promise<void> {
  const { log, print, target } = options;
  const client = conn.stream;
  const prefix = `conn=${conn.id}`;
  const server = net.connect({ ...connectOptionsOf(target), allowHalfOpen: true });
  if (target.kind === 'tcp') server.setNoDelay(true);
  if (client instanceof net.Socket) client.setNoDelay(true);
  print(`${prefix} open peer=${describePeer(conn.peer)} server=${describeConnectTarget(target)}`);
  let clientBytes = 0;
  let serverBytes = 0;
  client.on('data', (c: Buffer) => (clientBytes += c.length));
  server.on('data', (c: Buffer) => (serverBytes += c.length));
  await new Promise<void>((resolve) => {
    let closed = 0;
    const onClose = (): void => {
      if (++closed === 2) resolve();
    };
    const fail = (side: string) => (error: Error) => {
      log.warning('snoop relay error', { conn: conn.id, side, error: (error as NodeJS.ErrnoException).code ?? error.message });
      client.destroy();
      server.destroy();
    };
    client.once('close', onClose);
    server.once('close', onClose);
    client.on('error', fail('client'));
    server.on('error', fail('server'));
    relay(client, server, new FrameTap('request', 'c2s'), print, prefix);
    relay(server, client, new FrameTap('response', 's2c'), print, prefix);
    // When the server hangs up completely, the client has nothing more to wait for.
    server.once('close', () => client.end());
    client.once('close', () => server.end());
  });
  print(`${prefix} close c2s_bytes=${clientBytes} s2c_bytes=${serverBytes}`);
}
