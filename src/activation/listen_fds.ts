// Inherited file descriptors: what systemd's LISTEN_FDS protocol hands us, and what any fd is
// before we touch it. The look-before-touching rule exists because a failed
// `server.listen({ fd })` closes the fd: an accepted connection mistaken for a listener would be
// lost. A socket's kind comes from its inode in /proc/net/{tcp,tcp6,unix} (listening state).

import fs from 'node:fs';

/**
 * What an fd is: a listening stream socket, another (connected) socket, a socket this network
 * namespace's /proc/net tables do not list (systemd's PrivateNetwork=yes hands the service a
 * listener from the host's namespace), a pipe, something else, or nothing.
 */
export type FdKind = 'listening' | 'socket' | 'foreign-socket' | 'pipe' | 'other' | 'closed';

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
  const state = socketState(stat.ino);
  return state === 'listening' ? 'listening' : state === 'connected' ? 'socket' : 'foreign-socket';
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

// /proc/net/tcp and tcp6: "sl local rem st ... uid timeout inode"; st 0A is TCP_LISTEN.
// /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; Flags 00010000 is
// __SO_ACCEPTCON (listen() was called), Type 0001 is SOCK_STREAM.
function socketState(inode: number): 'listening' | 'connected' | 'unlisted' {
  const wanted = String(inode);
  for (const table of ['tcp', 'tcp6']) {
    for (const row of readTable(table)) {
      const cols = row.trim().split(/\s+/);
      if (cols[9] === wanted) return cols[3] === '0A' ? 'listening' : 'connected';
    }
  }
  for (const row of readTable('unix')) {
    const cols = row.trim().split(/\s+/);
    if (cols[6] === wanted) return (parseInt(cols[3] ?? '0', 16) & 0x10000) !== 0 && cols[4] === '0001' ? 'listening' : 'connected';
  }
  return 'unlisted';
}

function readTable(name: string): string[] {
  try {
    return fs.readFileSync(`/proc/net/${name}`, 'latin1').split('\n').slice(1);
  } catch {
    return [];
  }
}
