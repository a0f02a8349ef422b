// Listening sockets: bound from ListenSpecs in standalone mode (TCP v4/v6, unix with owner,
// group and mode), or adopted from inherited fds (systemd Accept=no, inetd wait). What is the same
// for every listener (stale unix sockets, the umask, owner and mode, the error advice) is here;
// the socket itself is opened by a ListenerOpener: Node's net.Server (nodeListeners, below), or
// the native socket pump (./pumped_listener). Every net.Server is created with pauseOnConnect so
// the pool decides when a connection starts reading.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ListenSpec } from './options';
import { describeListenSpec, describeServer } from './address';
import { resolveGroup, resolveUser } from './privileges';
import { DistkitError } from '../errors';

export interface Listener {
  /** Node's server (none for a listener of the socket pump). */
  readonly server?: net.Server;
  /** Listener name (handlers[name], Connection.listener). */
  readonly name: string;
  /** The bound address as printed ("127.0.0.1:3632", "[::1]:3632", "unix:/run/x.sock", "fd:3"). */
  readonly address: string;
  /** Stops accepting and closes the socket (a unix socket bound here is unlinked). */
  close(): void;
}

/** Where a listener listens once its spec is checked: a TCP address, or an absolute unix path. */
export type ListenTarget = { readonly host: string; readonly port: number } | { readonly path: string };

/** Opens listening sockets one way (Node's net.Server, or the native socket pump). */
export interface ListenerOpener {
  /** Listens on `target`; rejects with the system's error (its code: EADDRINUSE...). */
  listen(name: string, target: ListenTarget, backlog: number): Promise<Listener>;
  /** Serves an inherited listening fd; rejects with the system's error. */
  adopt(fd: number, name: string): Promise<Listener>;
}

/** Receives every accepted socket (paused) with the name of its listener. */
export type OnConnection = (socket: net.Socket, listener: string) => void;

const BACKLOG = 511;

// The connection callback is attached before listen(), so no connection can arrive unseen.
function createServer(name: string, onConnection: OnConnection): net.Server {
  return net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => onConnection(socket, name));
}

/** Listeners on Node's net.Server: every connection a paused net.Socket for `onConnection`. */
export function nodeListeners(onConnection: OnConnection): ListenerOpener {
  const opened = (server: net.Server, name: string, address: string): Listener => ({ server, name, address, close: () => server.close() });
  return {
    async listen(name, target, backlog) {
      const server = createServer(name, onConnection);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ ...target, backlog }, () => resolve());
      });
      return opened(server, name, 'path' in target ? `unix:${target.path}` : describeServer(server));
    },
    async adopt(fd, name) {
      const server = createServer(name, onConnection);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ fd }, () => resolve());
      });
      // An inherited unix listener has no address in Node (systemd owns the path).
      return opened(server, name, server.address() === null ? `fd:${fd}` : describeServer(server));
    },
  };
}

/** Binds every spec in order; on any failure closes what was bound and throws 'bind-failed'. */
export async function bindListeners(specs: readonly ListenSpec[], opener: ListenerOpener): Promise<Listener[]> {
  const bound: Listener[] = [];
  try {
    for (const spec of specs) bound.push(await bindOne(spec, opener));
  } catch (error) {
    closeListeners(bound);
    throw error;
  }
  return bound;
}

async function bindOne(spec: ListenSpec, opener: ListenerOpener): Promise<Listener> {
  const name = spec.name ?? 'main';
  if (spec.kind === 'tcp') return listen(opener, name, { host: spec.host, port: spec.port }, spec);
  // An absolute path: libuv unlinks it on close, and a detached daemon may change directory.
  const file = path.resolve(spec.path);
  await removeStaleSocket(file, spec);
  const owner = spec.owner === undefined ? undefined : resolveUser(spec.owner).uid;
  const group = spec.group === undefined ? undefined : resolveGroup(spec.group);
  // The umask keeps the socket from being reachable with wider permissions between bind() and
  // chmod() (a local user could connect in that window).
  const oldMask = spec.mode === undefined ? undefined : process.umask(0o777 & ~spec.mode);
  let listener: Listener;
  try {
    listener = await listen(opener, name, { path: file }, spec);
  } finally {
    if (oldMask !== undefined) process.umask(oldMask);
  }
  try {
    if (spec.mode !== undefined) fs.chmodSync(file, spec.mode);
    if (owner !== undefined || group !== undefined) fs.chownSync(file, owner ?? -1, group ?? -1);
  } catch (error) {
    listener.close();
    throw new DistkitError('bind-failed', `Cannot set owner/mode of ${file}: ${(error as Error).message}`, { cause: error });
  }
  return listener;
}

/** Adopts an inherited listening fd (already checked to be one: a failed listen({fd}) closes it). */
export async function adoptListener(fd: number, name: string, opener: ListenerOpener): Promise<Listener> {
  try {
    return await opener.adopt(fd, name);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new DistkitError('bind-failed', `Cannot listen on inherited fd ${fd}: ${code}`, { cause: error });
  }
}

/** Closes every listener; one that throws does not keep the others open (nor fail a stop). */
export function closeListeners(listeners: readonly Listener[]): void {
  for (const l of listeners) {
    try {
      l.close();
    } catch {
      // Its fd is gone or was never open; the stop goes on.
    }
  }
}

async function listen(opener: ListenerOpener, name: string, target: ListenTarget, spec: ListenSpec): Promise<Listener> {
  try {
    return await opener.listen(name, target, BACKLOG);
  } catch (error) {
    throw new DistkitError('bind-failed', `Cannot bind ${describeListenSpec(spec)}: ${bindAdvice(error as NodeJS.ErrnoException, spec)}`, { cause: error });
  }
}

function bindAdvice(error: NodeJS.ErrnoException, spec: ListenSpec): string {
  // libuv reports a missing directory of a unix socket as EACCES (as Windows would).
  if (spec.kind === 'unix' && !fs.existsSync(path.dirname(path.resolve(spec.path)))) {
    return 'directory does not exist (create it first)';
  }
  switch (error.code) {
    case 'EADDRINUSE':
      return 'address in use (another server listens there: stop it or choose another address)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need root; for a unix socket check the directory)';
    case 'EADDRNOTAVAIL':
      return 'address not available (no interface of this machine has it)';
    default:
      return error.code ?? error.message;
  }
}

/**
 * A socket file left by a daemon that died is removed; one that still answers means another
 * server is running, and anything that is not a socket is never deleted.
 */
async function removeStaleSocket(file: string, spec: ListenSpec): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new DistkitError('bind-failed', `Cannot bind ${describeListenSpec(spec)}: ${file} exists and is not a socket (remove it or choose another path)`);
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path: file });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) {
    throw new DistkitError('bind-failed', `Cannot bind ${describeListenSpec(spec)}: another server is listening on ${file} (stop it or choose another path)`);
  }
  fs.rmSync(file, { force: true });
}
