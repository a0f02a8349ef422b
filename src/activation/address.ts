// Listen addresses as users write them and peers as log lines print them. Parsing is the one
// place where "host:port", "[::1]:port", "unix:/path" and "/path" become ListenSpecs, so every
// CLI accepts the same spellings and states the same error for a bad one.

import type net from 'node:net';
import type { PeerAddress } from './connection';
import type { ListenSpec } from './options';

/**
 * Parses "127.0.0.1:3632", "[::1]:3632", ":3632" (all IPv4 addresses), "3632", "unix:/run/x.sock"
 * or an absolute path. `defaultHost` fills in a missing host.
 */
export function parseListenSpec(text: string, options: { defaultHost?: string; name?: string } = {}): ListenSpec {
  const name = options.name;
  if (text.startsWith('unix:') || text.startsWith('/')) {
    const path = text.startsWith('unix:') ? text.slice('unix:'.length) : text;
    if (path === '') throw new RangeError(`Bad listen address "${text}": give a socket path after unix:`);
    return name === undefined ? { kind: 'unix', path } : { kind: 'unix', path, name };
  }
  let host = options.defaultHost ?? '0.0.0.0';
  let portText = text;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed !== null) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
  } else if (text.includes(':')) {
    const at = text.lastIndexOf(':');
    if (text.indexOf(':') !== at) {
      throw new RangeError(`Bad listen address "${text}": write IPv6 addresses as [addr]:port`);
    }
    if (at > 0) host = text.slice(0, at);
    portText = text.slice(at + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new RangeError(`Bad listen address "${text}": the port must be a number from 0 to 65535`);
  }
  return name === undefined ? { kind: 'tcp', host, port } : { kind: 'tcp', host, port, name };
}

/** "127.0.0.1:3632", "[::1]:3632" or "unix:/path": a ListenSpec as error and log lines print it. */
export function describeListenSpec(spec: ListenSpec): string {
  if (spec.kind === 'unix') return `unix:${spec.path}`;
  return spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
}

/** The address a listening server really has (port 0 resolved); unix listeners print their path. */
export function describeServer(server: net.Server, fallbackPath?: string): string {
  const a = server.address();
  if (a === null || typeof a === 'string') {
    const path = typeof a === 'string' && a !== '' ? a : fallbackPath;
    return path === undefined ? 'unix' : `unix:${path}`;
  }
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Who is on the other end of an accepted (or inherited) socket. */
export function peerOf(socket: net.Socket): PeerAddress {
  if (socket.remoteAddress === undefined) {
    // AF_UNIX sockets have no remote address; the peer's path is almost always unbound.
    return { kind: 'unix' };
  }
  const family = socket.remoteFamily === 'IPv6' ? 'IPv6' : 'IPv4';
  return { kind: 'tcp', address: socket.remoteAddress, port: socket.remotePort ?? 0, family };
}
