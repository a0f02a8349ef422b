// The activation layer's entry point: runService(options) decides the mode once, logs which and
// why, obtains connections and hands each to the engine's handler.
//
// FOUNDATION SEED: this first version serves standalone TCP and unix listeners only, with the
// connection limit and the graceful stop. The foundation issue replaces its inside with the full
// mode matrix (systemd, inetd, pipes, detach, pid file, privileges, sd_notify) behind the same
// signature.

import net from 'node:net';
import fs from 'node:fs';
import type { Connection, ConnectionHandler, PeerAddress } from './connection';
import type { ListenSpec, RunningService, ServiceOptions } from './options';
import { DistkitError } from '../errors';

export * from './connection';
export * from './options';

export async function runService(options: ServiceOptions): Promise<RunningService> {
  const { log } = options;
  const why = 'standalone: no inherited sockets';
  log.notice(`mode ${why}`);
  let nextId = 1;
  let active = 0;
  const waiting: Array<() => void> = [];
  const inFlight = new Set<Promise<unknown>>();
  const servers: net.Server[] = [];
  const addresses: string[] = [];
  let stopping = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const serve = (socket: net.Socket, spec: ListenSpec): void => {
    socket.pause();
    const start = (): void => {
      active++;
      const peer: PeerAddress =
        spec.kind === 'unix'
          ? { kind: 'unix', path: spec.path }
          : {
              kind: 'tcp',
              address: socket.remoteAddress ?? '?',
              port: socket.remotePort ?? 0,
              family: socket.remoteFamily === 'IPv6' ? 'IPv6' : 'IPv4',
            };
      const name = spec.name ?? 'main';
      const handler: ConnectionHandler = options.handlers[name] ?? options.handlers.main;
      const conn: Connection = { stream: socket, peer, id: nextId++, listener: name };
      socket.resume();
      const p = handler(conn)
        .catch((error: unknown) => log.err('handler failed', { conn: conn.id, error: String(error) }))
        .finally(() => {
          socket.destroy();
          active--;
          inFlight.delete(p);
          waiting.shift()?.();
        });
      inFlight.add(p);
    };
    if (options.maxConnections > 0 && active >= options.maxConnections) waiting.push(start);
    else start();
  };

  for (const spec of options.listen) {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => serve(s, spec));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new DistkitError('bind-failed', `Cannot bind ${label(spec)}: ${error.code ?? error.message}`, {
            cause: error,
          }),
        ),
      );
      if (spec.kind === 'unix') {
        fs.rmSync(spec.path, { force: true });
        server.listen({ path: spec.path, backlog: 511 }, resolve);
      } else {
        server.listen({ host: spec.host, port: spec.port, backlog: 511 }, resolve);
      }
    });
    const a = server.address();
    addresses.push(typeof a === 'string' || a === null ? `unix:${spec.kind === 'unix' ? spec.path : a}` : `${a.address}:${a.port}`);
    servers.push(server);
  }
  log.notice('listening', { on: addresses.join(',') });

  const stop = async (): Promise<void> => {
    if (stopping) return done.then(() => undefined);
    stopping = true;
    for (const s of servers) s.close();
    const timer = setTimeout(() => resolveDone(0), options.drainTimeoutMs);
    await Promise.all([...inFlight]);
    clearTimeout(timer);
    resolveDone(0);
  };
  return { mode: why, addresses, stop, done };
}

function label(spec: ListenSpec): string {
  return spec.kind === 'unix' ? `unix:${spec.path}` : `${spec.host}:${spec.port}`;
}
