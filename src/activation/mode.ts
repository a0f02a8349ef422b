// Decides, once, how connections reach this process, and says why. Like distcc's daemon.c the
// flags come first (--inetd, --daemon), then what was inherited: systemd's LISTEN_FDS (only when
// LISTEN_PID is ours), then what fd 0 is. Nothing here changes an fd or the environment, so a CLI
// can call detectMode before runService (distccd refuses to serve many peers without --allow)
// and hand the decision over instead of detecting twice.

import { classifyFd, readListenFds, sameFile, LISTEN_FDS_START, type ListenFd } from './listen_fds';

/** How the program was asked to run. 'auto' detects (stdin a socket -> inetd, LISTEN_FDS -> systemd). */
export type ModeRequest = 'auto' | 'inetd' | 'daemon';

export type ModeKind = 'systemd-listen' | 'systemd-accept' | 'inetd' | 'inetd-wait' | 'standalone';

/** An inherited fd and what it is: a listener to accept on, one connection, or a pipe pair. */
export interface InheritedFd {
  readonly fd: number;
  readonly name: string;
  readonly kind: 'listening' | 'connection' | 'pipe';
}

export interface ModeDecision {
  readonly kind: ModeKind;
  /** The reason, as logged on the first line (`mode kind=inetd why="stdin is a connected socket"`). */
  readonly why: string;
  /** Inherited fds to serve (empty in standalone mode, which binds its own). */
  readonly fds: readonly InheritedFd[];
}

/** True for modes that accept many connections from many peers (distccd wants --allow there). */
export function servesManyConnections(decision: ModeDecision): boolean {
  return decision.kind === 'standalone' || decision.kind === 'systemd-listen' || decision.kind === 'inetd-wait';
}

/** True for modes where the process serves exactly one connection and exits with its status. */
export function servesOneConnection(decision: ModeDecision): boolean {
  return !servesManyConnections(decision);
}

export function detectMode(
  request: ModeRequest,
  options: { env?: NodeJS.ProcessEnv; pid?: number } = {},
): ModeDecision {
  const env = options.env ?? process.env;
  const pid = options.pid ?? process.pid;
  const inherited = readListenFds(env, pid);
  if (inherited !== undefined) return fromListenFds(inherited, env);
  if (request === 'daemon') {
    return { kind: 'standalone', why: '--daemon given and no LISTEN_FDS for this pid', fds: [] };
  }
  const stdin = classifyFd(0);
  const underSystemd = env.INVOCATION_ID !== undefined;
  if (stdin === 'listening') {
    return {
      kind: 'inetd-wait',
      why: 'stdin is a listening socket (inetd "wait" or systemd StandardInput=socket, Accept=no)',
      fds: [{ fd: 0, name: 'main', kind: 'listening' }],
    };
  }
  if (stdin === 'socket' && !sameFile(0, 1)) {
    // sshd may hand over two socketpairs instead of pipes: read fd 0, write fd 1. Only on
    // --inetd: a supervisor (or a test) that spawns us with socketpair stdio means no connection.
    if (request === 'inetd') {
      return { kind: 'inetd', why: '--inetd given and stdin and stdout are two different sockets (ssh); serving one connection over them', fds: [{ fd: 0, name: 'main', kind: 'pipe' }] };
    }
    return { kind: 'standalone', why: 'no LISTEN_FDS for this pid and stdin is a socket other than stdout (not inetd)', fds: [] };
  }
  if (stdin === 'socket') {
    return underSystemd
      ? { kind: 'systemd-accept', why: 'stdin is a connected socket and INVOCATION_ID is set (Accept=yes, StandardInput=socket)', fds: [{ fd: 0, name: 'main', kind: 'connection' }] }
      : { kind: 'inetd', why: 'stdin is a connected socket', fds: [{ fd: 0, name: 'main', kind: 'connection' }] };
  }
  if (request === 'inetd') {
    // distcc over ssh runs `distccd --inetd` with two pipes (or a terminal) as stdin/stdout.
    const what = stdin === 'pipe' ? 'stdin is a pipe (ssh)' : `stdin is ${stdin === 'closed' ? 'closed' : 'not a socket'}`;
    return { kind: 'inetd', why: `--inetd given and ${what}; serving one connection over stdin/stdout`, fds: [{ fd: 0, name: 'main', kind: 'pipe' }] };
  }
  return { kind: 'standalone', why: 'no LISTEN_FDS for this pid and stdin is not a socket', fds: [] };
}

function fromListenFds(inherited: readonly ListenFd[], env: NodeJS.ProcessEnv): ModeDecision {
  if (env.LISTEN_FDNAMES === 'connection' && inherited.length === 1) {
    return {
      kind: 'systemd-accept',
      why: `LISTEN_FDNAMES=connection, one connection on fd ${LISTEN_FDS_START}`,
      fds: [{ fd: LISTEN_FDS_START, name: 'main', kind: 'connection' }],
    };
  }
  const fds: InheritedFd[] = [];
  // The socket itself says whether it listens, also when it lives in another network namespace
  // (PrivateNetwork=yes): systemd's names are not needed to tell a listener from a connection.
  for (const { fd, name } of inherited) {
    const kind = classifyFd(fd);
    if (kind === 'socket' && inherited.length === 1) {
      return {
        kind: 'systemd-accept',
        why: `LISTEN_FDS=1 and fd ${fd} is a connected socket (Accept=yes)`,
        fds: [{ fd, name: 'main', kind: 'connection' }],
      };
    }
    // A fd that is not a listening stream socket is skipped, not touched: listen({fd}) would close it.
    if (kind === 'listening') fds.push({ fd, name, kind: 'listening' });
  }
  const names = fds.map((f) => `${f.fd}=${f.name}`).join(',');
  return {
    kind: 'systemd-listen',
    why: `LISTEN_FDS=${inherited.length} for this pid, listening on fds ${names || 'none'}`,
    fds,
  };
}
