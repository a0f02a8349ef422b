// The contract between a program's CLI and the activation layer: everything the layer needs to
// decide the mode, bind or inherit listeners, detach, drop privileges and stop gracefully.

import type http from 'node:http';
import type net from 'node:net';
import type { ConnectionHandler } from './connection';
import type { RootLogger } from '../log/index';
import type { ModeDecision, ModeRequest } from './mode';
import type { PumpedConnectionHandler } from './socket_pump';

export type ListenSpec =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly name?: string }
  | {
      readonly kind: 'unix';
      readonly path: string;
      readonly name?: string;
      /** chown/chmod of the socket file after bind (dc_server -sockowner/-sockgroup/-sockperms). */
      readonly owner?: string;
      readonly group?: string;
      readonly mode?: number;
    };

export interface ServiceOptions {
  readonly program: string;
  readonly log: RootLogger;
  /** Handler per listener name; "main" is the default for unnamed listeners and single connections. */
  readonly handlers: { readonly main: ConnectionHandler } & { readonly [name: string]: ConnectionHandler };
  /**
   * When given, the listeners (bound, or inherited with Accept=no) accept in the native socket
   * pump (./pumped_listener) and every connection goes here, not to `handlers`, with no
   * net.Socket made. Single-connection modes (inetd, Accept=yes) and a thread where the pump
   * cannot open still use `handlers`. `onTcpListener` is not called for these listeners.
   */
  readonly pumped?: PumpedConnectionHandler;
  readonly mode: ModeRequest;
  /** Addresses to bind in standalone mode (ignored when sockets are inherited). */
  readonly listen: readonly ListenSpec[];
  /** Detach from the terminal once listening (standalone only). */
  readonly detach: boolean;
  readonly pidFile?: string;
  readonly user?: string;
  /**
   * The supplementary groups `user` gets: its own from the group database (initgroups, the
   * default), or none, as C distccd's drop (setgroups(0)) gives the account it picks itself.
   */
  readonly userGroups?: 'member' | 'none';
  /**
   * Runs once privileges are dropped, before anything is served: checks that need the final
   * identity (can it write TMPDIR?). A throw stops the start as a failed bind would.
   */
  readonly afterPrivileges?: () => void;
  /**
   * Runs for each TCP listener this process binds itself (standalone mode), before privileges
   * are dropped: socket options the protocol wants (distccd: TCP_DEFER_ACCEPT). An inherited
   * listener is its service manager's to configure (systemd DeferAcceptSec=).
   */
  readonly onTcpListener?: (server: net.Server, address: string) => void;
  readonly nice?: number;
  /** At most this many connections served at once; the rest wait, none is refused. 0 = no limit. */
  readonly maxConnections: number;
  /** SIGTERM: how long connections in flight may take before the process exits anyway. */
  readonly drainTimeoutMs: number;
  /** Exit (gracefully) after this long; 0 = never (distccd --lifetime). */
  readonly lifetimeMs?: number;
  /** One-line summary for sd_notify STATUS= and the start-up log. */
  readonly status?: () => string;
  /** The mode a CLI already decided with detectMode(mode) (so it is detected once). */
  readonly decision?: ModeDecision;
  /**
   * The metrics listener (metrics_http.ts): `listen` is bound in standalone mode, an inherited fd
   * named "metrics" is used under systemd; its connections go to `server`, not to the pool. In
   * the modes that serve one connection per process there is none.
   */
  readonly metrics?: { readonly listen?: ListenSpec; readonly server: http.Server };
}

export interface RunningService {
  /** How the mode was chosen, as logged: e.g. "standalone: no LISTEN_FDS and stdin is not a socket". */
  readonly mode: string;
  /** Bound addresses in standalone mode (port 0 resolved), for tests and the start-up banner. */
  readonly addresses: readonly string[];
  /** Stop accepting, drain, resolve when every connection in flight has finished. */
  stop(): Promise<void>;
  /** Resolves when the service has ended (stopped, lifetime over, or its single connection done). */
  readonly done: Promise<number>;
  /** The decision behind `mode`. */
  readonly decision?: ModeDecision;
  /** Connections being served and waiting right now (absent in the process that only detached). */
  readonly load?: () => { readonly active: number; readonly queued: number };
}
