// The standard fds when they may belong to a client: under inetd (and systemd Accept=yes with
// StandardError=socket) fds 0, 1 and 2 are all the client socket, so a stray line on stderr would
// corrupt the protocol (and in inetd "wait" mode writing to the listening socket throws). fd 2 is
// therefore reopened on the log file or /dev/null before anything logs. Only when it IS the
// client's socket: under journald fd 2 is a socket too, and must stay.

import fs from 'node:fs';

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

/** What protectStderr needs of a mode decision: the inherited fds (the client's or listener's). */
export interface StdioOwner {
  readonly fds: readonly { readonly fd: number }[];
}

/**
 * Reopens fd 2 on `file` (or /dev/null) when it is one of the inherited client/listener fds, or
 * closed (the next open() would land there). Returns true when it did.
 */
export function protectStderr(decision: StdioOwner, file?: string): boolean {
  let stderr: fs.Stats | undefined;
  try {
    stderr = fs.fstatSync(2);
  } catch {
    stderr = undefined;
  }
  if (stderr !== undefined && !decision.fds.some(({ fd }) => fd !== 2 && isSameFile(stderr!, fd))) return false;
  try {
    reopenFd(2, file ?? '/dev/null');
  } catch {
    reopenFd(2);
  }
  return true;
}

function isSameFile(stat: fs.Stats, fd: number): boolean {
  try {
    const other = fs.fstatSync(fd);
    return other.ino === stat.ino && other.dev === stat.dev;
  } catch {
    return false;
  }
}
