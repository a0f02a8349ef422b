// The libnal address syntax that dc_server, dc_client and dc_snoop take for -listen, -server and
// -connect, and its translation into what the activation layer binds (a ListenSpec) or what
// net.connect dials. One parser, so all three programs accept the same spellings and refuse the
// same mistakes with the same words.
//
//   IP:port, IP::port            all IPv4 interfaces (listen only)
//   IP:host:port, IPv4:host:port  one host (name or dotted quad); listen or connect
//   IP:[v6addr]:port              one IPv6 address (ours; the original has no IPv6)
//   UNIX:/path                    unix stream socket (ours refuses paths sun_path cannot hold;
//                                 the original silently truncated them)
//   FD:n, FD:rd:wr                an already-open descriptor (pair)
//
// Prefixes are case-sensitive, ports decimal 0..65535, whole strings 2..255 characters
// (NAL_ADDRESS_create / NAL_ADDRESS_MAX_STR_LEN). Parsing is pure; resolving a host name to its
// IPv4 address (the original used gethostbyname) is a separate async step.

import dns from 'node:dns/promises';
import net from 'node:net';
import { DistkitError } from '../errors';
import type { ListenSpec } from '../activation/options';

/** Shortest and longest address strings libnal accepts (NAL_ADDRESS_create, NAL_ADDRESS_MAX_STR_LEN). */
export const ADDRESS_MIN_LENGTH = 2;
export const ADDRESS_MAX_LENGTH = 255;
/** sun_path holds 108 bytes including the terminating NUL (UNIX_PATH_MAX). */
export const UNIX_PATH_MAX_BYTES = 107;
/** proto_fd.c refuses descriptors above this. */
const FD_MAX = 65535;

export type CacheAddress =
  /** host undefined: every IPv4 interface, which only a listener can use. */
  | { readonly kind: 'tcp'; readonly text: string; readonly host: string | undefined; readonly port: number }
  | { readonly kind: 'unix'; readonly text: string; readonly path: string }
  /** -1 on one side means that direction is unused (proto_fd.c); never both. */
  | { readonly kind: 'fd'; readonly text: string; readonly read: number; readonly write: number };

function bad(text: string, why: string): DistkitError {
  return new DistkitError('bad-address', `Bad address "${text}": ${why}`);
}

/** Parses one libnal address string; throws DistkitError('bad-address') saying what is wrong. */
export function parseCacheAddress(text: string): CacheAddress {
  if (text.length < ADDRESS_MIN_LENGTH || text.length > ADDRESS_MAX_LENGTH) {
    throw bad(text, `an address is ${ADDRESS_MIN_LENGTH} to ${ADDRESS_MAX_LENGTH} characters long (this one has ${text.length})`);
  }
  if (text.startsWith('IP:')) return parseIp(text, text.slice(3));
  if (text.startsWith('IPv4:')) return parseIp(text, text.slice(5));
  if (text.startsWith('UNIX:')) return parseUnix(text, text.slice(5));
  if (text.startsWith('FD:')) return parseFd(text, text.slice(3));
  throw bad(text, 'start it with IP:, IPv4:, UNIX: or FD: (case-sensitive), e.g. IP:9001 or UNIX:/run/dc.sock');
}

function parsePort(text: string, portText: string): number {
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
    throw bad(text, `the port "${portText}" must be a decimal number from 0 to 65535`);
  }
  return Number(portText);
}

function parseIp(text: string, rest: string): CacheAddress {
  if (rest === '') throw bad(text, 'give a port after the prefix, e.g. IP:9001 or IP:127.0.0.1:9001');
  if (rest.startsWith('[')) {
    const m = /^\[([^\]]*)\]:(.*)$/.exec(rest);
    if (m === null) throw bad(text, 'write an IPv6 address as IP:[addr]:port, e.g. IP:[::1]:9001');
    if (!net.isIPv6(m[1]!)) throw bad(text, `"${m[1]}" is not an IPv6 address`);
    return { kind: 'tcp', text, host: m[1]!, port: parsePort(text, m[2]!) };
  }
  const colon = rest.indexOf(':');
  if (colon < 0) return { kind: 'tcp', text, host: undefined, port: parsePort(text, rest) };
  // "IP::port" is the same as "IP:port" (listen on every IPv4 interface).
  if (colon === 0) {
    if (rest.indexOf(':', 1) >= 0) throw bad(text, 'write an IPv6 address in brackets, e.g. IP:[::1]:9001');
    return { kind: 'tcp', text, host: undefined, port: parsePort(text, rest.slice(1)) };
  }
  const host = rest.slice(0, colon);
  const portText = rest.slice(colon + 1);
  if (portText.includes(':')) throw bad(text, 'write an IPv6 address in brackets, e.g. IP:[::1]:9001');
  if (!net.isIPv4(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw bad(text, `"${host}" is neither a dotted-quad IPv4 address nor a host name`);
  }
  return { kind: 'tcp', text, host, port: parsePort(text, portText) };
}

function parseUnix(text: string, path: string): CacheAddress {
  if (path === '') throw bad(text, 'give a socket path after UNIX:, e.g. UNIX:/run/dc_server.sock');
  if (path.includes('\0')) throw bad(text, 'a socket path cannot contain a NUL byte');
  const bytes = Buffer.byteLength(path);
  if (bytes > UNIX_PATH_MAX_BYTES) {
    throw bad(text, `the socket path is ${bytes} bytes but a unix socket path holds at most ${UNIX_PATH_MAX_BYTES}: choose a shorter path`);
  }
  return { kind: 'unix', text, path };
}

function parseFdNumber(text: string, n: string): number {
  if (!/^(-1|\d+)$/.test(n) || Number(n) > FD_MAX) {
    throw bad(text, `"${n}" is not a file descriptor number (0 to ${FD_MAX}, or -1 for an unused direction)`);
  }
  return Number(n);
}

function parseFd(text: string, rest: string): CacheAddress {
  const parts = rest.split(':');
  if (parts.length === 1) {
    const fd = parseFdNumber(text, parts[0]!);
    if (fd < 0) throw bad(text, 'FD:-1 leaves both directions unused; give a descriptor number');
    return { kind: 'fd', text, read: fd, write: fd };
  }
  if (parts.length !== 2) throw bad(text, 'write FD:n or FD:read:write');
  const read = parseFdNumber(text, parts[0]!);
  const write = parseFdNumber(text, parts[1]!);
  if (read < 0 && write < 0) throw bad(text, 'at least one of the two descriptors must be open');
  return { kind: 'fd', text, read, write };
}

/**
 * Replaces a host name by its IPv4 address (the original resolved with gethostbyname, IPv4 only),
 * so a listener binds exactly one address and log lines show it. Literal addresses pass unchanged.
 */
export async function resolveCacheAddress(address: CacheAddress): Promise<CacheAddress> {
  if (address.kind !== 'tcp' || address.host === undefined || net.isIP(address.host) !== 0) return address;
  try {
    const found = await dns.lookup(address.host, { family: 4 });
    return { ...address, host: found.address };
  } catch (error) {
    throw new DistkitError('bad-address', `Bad address "${address.text}": cannot resolve host "${address.host}" to an IPv4 address`, { cause: error });
  }
}

/** Socket-file ownership and permissions for a unix listener (-sockowner, -sockgroup, -sockperms). */
export interface SocketFileOptions {
  readonly owner?: string;
  readonly group?: string;
  readonly mode?: number;
  readonly name?: string;
}

/** What the activation layer binds for `-listen`. FD: addresses are not bound: the CLI maps them. */
export function toListenSpec(address: CacheAddress, options: SocketFileOptions = {}): ListenSpec {
  const name = options.name === undefined ? {} : { name: options.name };
  switch (address.kind) {
    case 'tcp':
      return { kind: 'tcp', host: address.host ?? '0.0.0.0', port: address.port, ...name };
    case 'unix':
      return {
        kind: 'unix',
        path: address.path,
        ...name,
        ...(options.owner === undefined ? {} : { owner: options.owner }),
        ...(options.group === undefined ? {} : { group: options.group }),
        ...(options.mode === undefined ? {} : { mode: options.mode }),
      };
    case 'fd':
      throw bad(address.text, 'a descriptor is not an address to bind; run under inetd or systemd instead');
  }
}

/** A place net.connect can dial. */
export type ConnectTarget =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly family?: 4 | 6 }
  | { readonly kind: 'unix'; readonly path: string };

/** What `-server`/`-connect` dials. "IP:port" names no host, so it cannot be dialled. */
export function toConnectTarget(address: CacheAddress): ConnectTarget {
  switch (address.kind) {
    case 'tcp':
      if (address.host === undefined) {
        throw bad(address.text, 'name the host to connect to, e.g. IP:127.0.0.1:9001 (IP:port is for listening)');
      }
      return net.isIP(address.host) === 0
        ? { kind: 'tcp', host: address.host, port: address.port, family: 4 }
        : { kind: 'tcp', host: address.host, port: address.port };
    case 'unix':
      return { kind: 'unix', path: address.path };
    case 'fd':
      throw bad(address.text, 'connecting to a descriptor is not supported: give an IP: or UNIX: address');
  }
}

/** net.connect options for a target (TCP_NODELAY is the caller's: socket.setNoDelay). */
export function connectOptionsOf(target: ConnectTarget): net.NetConnectOpts {
  return target.kind === 'unix'
    ? { path: target.path }
    : target.family === undefined
      ? { host: target.host, port: target.port }
      : { host: target.host, port: target.port, family: target.family };
}

/** "IP:127.0.0.1:9001" style text for log lines and errors. */
export function describeConnectTarget(target: ConnectTarget): string {
  if (target.kind === 'unix') return `UNIX:${target.path}`;
  return net.isIPv6(target.host) ? `IP:[${target.host}]:${target.port}` : `IP:${target.host}:${target.port}`;
}
