// Inherited file descriptors: what systemd's LISTEN_FDS protocol hands us, and what any fd is
// before we touch it. The look-before-touching rule exists because a failed
// `server.listen({ fd })` closes the fd: an accepted connection mistaken for a listener would be
// lost. A socket's kind comes from the socket itself (getsockopt SO_DOMAIN, SO_TYPE and
// SO_ACCEPTCONN through the distkit-spawn addon, as sd_is_socket does), so a listener from
// another network namespace (systemd's PrivateNetwork=yes) is seen as one: /proc/net, which
// this used to scan, lists only this namespace's sockets.

import fs from 'node:fs';

/**
 * What an fd is: a listening stream socket (TCP or unix), another stream socket (a
 * connection), a pipe, something else (a file, a terminal, a UDP socket...), or nothing.
 */
export type FdKind = 'listening' | 'socket' | 'pipe' | 'other' | 'closed';

export interface ListenFd {
  readonly fd: number;
  /** From LISTEN_FDNAMES ("main" when unnamed or "unknown"). */
  readonly name: string;
}

/** SD_LISTEN_FDS_START: systemd passes its sockets from fd 3 on. */
export const LISTEN_FDS_START = 3;

/**
 * The fds systemd passed, or undefined when LISTEN_PID is absent or names another process (a
 * parent's sockets must not be taken by a child that merely inherited the environment).
 */
export function readListenFds(env: NodeJS.ProcessEnv, pid: number): ListenFd[] | undefined {
  if (env.LISTEN_PID === undefined || env.LISTEN_FDS === undefined) return undefined;
  if (Number(env.LISTEN_PID) !== pid) return undefined;
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count <= 0) return undefined;
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':');
  const fds: ListenFd[] = [];
  for (let i = 0; i < count; i++) {
    const raw = names[i];
    // systemd names unnamed sockets "unknown" (Accept=no without FileDescriptorName=).
    const name = raw === undefined || raw === '' || raw === 'unknown' ? 'main' : raw;
    fds.push({ fd: LISTEN_FDS_START + i, name });
  }
  return fds;
}

/** Removes the LISTEN_* variables so compilers and other children do not inherit them. */
export function clearListenEnv(env: NodeJS.ProcessEnv = process.env): void {
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
}

/** Looks at an fd without changing it. */
export function classifyFd(fd: number): FdKind {
  let stat: fs.Stats;
  try {
    stat = fs.fstatSync(fd);
  } catch {
    return 'closed';
  }
  if (stat.isFIFO()) return 'pipe';
  if (!stat.isSocket()) return 'other';
  return classifySocket(fd);
}

// Node serves stream sockets of these families only (server.listen({ fd }), new net.Socket({ fd })).
const SERVABLE_FAMILIES: ReadonlySet<string> = new Set(['unix', 'inet', 'inet6']);

function classifySocket(fd: number): FdKind {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when an fd is a socket: a pipe or file needs no addon
  const native = require('distkit-spawn') as typeof import('distkit-spawn');
  let facts: import('distkit-spawn').SocketFacts;
  try {
    facts = native.inspectSocket(fd);
  } catch (err) {
    // getsockopt failed (the fd is not a socket after all): leave it alone. A stale addon
    // without inspectSocket throws a TypeError, which must not pass for "not a socket".
    if (typeof (err as NodeJS.ErrnoException).errno === 'number') return 'other';
    throw err;
  }
  if (facts.type !== 'stream' || !SERVABLE_FAMILIES.has(facts.family)) return 'other';
  return facts.listening ? 'listening' : 'socket';
}

/** True when fds `a` and `b` are the same open socket or file (inetd dups one socket to 0, 1 and 2). */
export function sameFile(a: number, b: number): boolean {
  try {
    const sa = fs.fstatSync(a);
    const sb = fs.fstatSync(b);
    return sa.ino === sb.ino && sa.dev === sb.dev;
  } catch {
    return false;
  }
}
