// How many bytes wait unread in a server's accepted sockets, from the kernel (ss). A test that
// freezes a server (SIGSTOP) learns this way that a request has reached it, instead of sleeping
// and hoping the proxy in between has forwarded it.

import { execFileSync } from 'node:child_process';

function ss(args: readonly string[]): string[][] {
  return execFileSync('ss', ['-nH', ...args, 'state', 'established'], { encoding: 'utf8' })
    .split('\n').map((row) => row.trim().split(/\s+/)).filter((cols) => cols.length > 2);
}

/** Bytes queued on the established sockets a server accepted on this unix path or loopback port. */
export function receiveQueue(address: { readonly path: string } | { readonly port: number }): number {
  // With a state filter ss leaves out the State column: -x rows are "u_str RecvQ SendQ path ...",
  // -t rows "RecvQ SendQ local peer".
  if ('path' in address) return ss(['-x']).filter((c) => c[3] === address.path).reduce((sum, c) => sum + Number(c[1]), 0);
  return ss(['-t']).filter((c) => c[2] === `127.0.0.1:${address.port}`).reduce((sum, c) => sum + Number(c[0]), 0);
}

/**
 * How many connections a server has accepted on this unix path: one the kernel holds in the
 * listen backlog, not yet accepted, is not listed (nor are its bytes), so a test that freezes the
 * server waits for this first.
 */
export function acceptedOn(address: { readonly path: string }): number {
  return ss(['-x']).filter((c) => c[3] === address.path).length;
}
