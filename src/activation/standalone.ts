// Listening sockets: bound from ListenSpecs in standalone mode (TCP v4/v6, unix with owner,
// group and mode), or adopted from inherited fds (systemd Accept=no, inetd wait). Every server
// is created with pauseOnConnect so the pool decides when a connection starts reading.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ListenSpec } from './options';
import { describeListenSpec, describeServer } from './address';
import { resolveGroup, resolveUser } from './privileges';
import { DistkitError } from '../errors';

export interface Listener {
  readonly server: net.Server;
  /** Listener name (handlers[name], Connection.listener). */
  readonly name: string;
  /** The bound address as printed ("127.0.0.1:3632", "[::1]:3632", "unix:/run/x.sock", "fd:3"). */
  readonly address: string;
}

/** Receives every accepted socket (paused) with the name of its listener. */
export type OnConnection = (socket: net.Socket, listener: string) => void;

const BACKLOG = 511;

// The connection callback is attached before listen(), so no connection can arrive unseen.
function createServer(name: string, onConnection: OnConnection): net.Server {
  return net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => onConnection(socket, name));
}

/** Binds every spec in order; on any failure closes what was bound and throws 'bind-failed'. */
export async function bindListeners(specs: readonly ListenSpec[], onConnection: OnConnection): Promise<Listener[]> {
  const bound: Listener[] = [];
  try {
    for (const spec of specs) bound.push(await bindOne(spec, onConnection));
  } catch (error) {
    closeListeners(bound);
    throw error;
  }
  return bound;
}

async function bindOne(spec: ListenSpec, onConnection: OnConnection): Promise<Listener> {
  const name = spec.name ?? 'main';
  const server = createServer(name, onConnection);
  if (spec.kind === 'tcp') {
    await listen(server, { host: spec.host, port: spec.port, backlog: BACKLOG }, spec);
    return { server, name, address: describeServer(server) };
  }
  // An absolute path: libuv unlinks it on close, and a detached daemon may change directory.
  const file = path.resolve(spec.path);
  await removeStaleSocket(file, spec);
  const owner = spec.owner === undefined ? undefined : resolveUser(spec.owner).uid;
  const group = spec.group === undefined ? undefined : resolveGroup(spec.group);
  // The umask keeps the socket from being reachable with wider permissions between bind() and
  // chmod() (a local user could connect in that window).
  const oldMask = spec.mode === undefined ? undefined : process.umask(0o777 & ~spec.mode);
  try {
    await listen(server, { path: file, backlog: BACKLOG }, spec);
  } finally {
    if (oldMask !== undefined) process.umask(oldMask);
  }
  try {
    if (spec.mode !== undefined) fs.chmodSync(file, spec.mode);
    if (owner !== undefined || group !== undefined) fs.chownSync(file, owner ?? -1, group ?? -1);
  } catch (error) {
    server.close();
    throw new DistkitError('bind-failed', `Cannot set owner/mode of ${file}: ${(error as Error).message}`, { cause: error });
  }
  return { server, name, address: `unix:${file}` };
}

/** Adopts an inherited listening fd (already checked to be one: a failed listen({fd}) closes it). */
export async function adoptListener(fd: number, name: string, onConnection: OnConnection): Promise<Listener> {
  const server = createServer(name, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new DistkitError('bind-failed', `Cannot listen on inherited fd ${fd}: ${error.code ?? error.message}`, { cause: error })),
    );
    server.listen({ fd }, () => resolve());
  });
  const address = server.address();
  // An inherited unix listener has no address in Node (systemd owns the path).
  return { server, name, address: address === null ? `fd:${fd}` : describeServer(server) };
}

export function closeListeners(listeners: readonly Listener[]): void {
  for (const l of listeners) l.server.close();
}

function listen(server: net.Server, options: net.ListenOptions, spec: ListenSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new DistkitError('bind-failed', `Cannot bind ${describeListenSpec(spec)}: ${bindAdvice(error, spec)}`, { cause: error })),
    );
    server.listen(options, () => resolve());
  });
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
