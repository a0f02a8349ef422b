// The standard fds when they may belong to a client: under inetd (and systemd Accept=yes with
// StandardInput=socket) fds 0, 1 and 2 are all the client socket, so a stray line on stderr would
// corrupt the protocol (and in inetd "wait" mode writing to the listening socket throws). fd 2 is
// therefore reopened on the log file or /dev/null before anything logs.

import fs from 'node:fs';

/** Modes in which fd 2 may be the client (or the listening) socket. */
const CLIENT_ON_STDIO = new Set(['inetd', 'inetd-wait', 'systemd-accept']);

/**
 * Closes `fd` and opens `path` in its place (the lowest free fd is the one just closed), so a later
 * write to that fd number goes there instead of to the client or a reused descriptor.
 */
export function reopenFd(fd: number, path = '/dev/null'): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Already closed: still put something harmless there.
  }
  const got = fs.openSync(path, fd === 0 ? 'r' : 'a', 0o640);
  if (got !== fd) fs.closeSync(got);
}

/** In a mode where fd 2 may be a socket, and it is one: reopen it on `file` (or /dev/null). */
export function protectStderr(mode: string, file?: string): boolean {
  if (!CLIENT_ON_STDIO.has(mode)) return false;
  let isSocket: boolean;
  try {
    isSocket = fs.fstatSync(2).isSocket();
  } catch {
    isSocket = true; // closed: fill the slot so nothing else lands on fd 2
  }
  if (!isSocket) return false;
  try {
    reopenFd(2, file ?? '/dev/null');
  } catch {
    reopenFd(2);
  }
  return true;
}
