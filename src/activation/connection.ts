// What the activation layer hands an engine: one byte stream both ways plus who is on the other
// end. The engine never learns how the bytes arrived (a listener, systemd, inetd, ssh pipes).

import type { Duplex } from 'node:stream';

export type PeerAddress =
  | { readonly kind: 'tcp'; readonly address: string; readonly port: number; readonly family: 'IPv4' | 'IPv6' }
  | { readonly kind: 'unix'; readonly path?: string }
  | { readonly kind: 'pipe' };

export interface Connection {
  /** Bytes both ways. end() sends FIN (or closes the stdout pipe); the layer destroys it after the handler. */
  readonly stream: Duplex;
  readonly peer: PeerAddress;
  /** Serial number within this process, for log lines (conn=N). */
  readonly id: number;
  /** Name of the listener it came from ("main" unless LISTEN_FDNAMES or the ListenSpec said otherwise). */
  readonly listener: string;
}

/**
 * Serves one connection and resolves when it is finished. In single-connection modes (inetd,
 * Accept=yes) a number resolved here becomes the process exit status (distccd: 113 for a denied
 * peer); elsewhere it is ignored.
 */
export type ConnectionHandler = (conn: Connection) => Promise<void | number>;

/** "1.2.3.4:5678", "[::1]:5678", "unix:/path", "pipe": the peer as log lines print it. */
export function describePeer(peer: PeerAddress): string {
  switch (peer.kind) {
    case 'tcp':
      return peer.family === 'IPv6' ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
    case 'unix':
      return peer.path === undefined ? 'unix' : `unix:${peer.path}`;
    case 'pipe':
      return 'pipe';
  }
}
