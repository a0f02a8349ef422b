// Listeners whose connections the native socket pump accepts itself (./socket_pump): accept4 in
// C, the connection read at once and handed to JavaScript as a pump socket id with its peer, no
// net.Socket, no 'connection' event, no hand-over. A connection per request (Apache's
// mod_socache_dc) paid Node's accept path on every request: a libuv accept, a TCPWrap and a
// net.Socket built, a turn of the loop, then the fd duplicated into the pump and the socket torn
// down again. The sockets are bound here in C (Node cannot give a listening fd away without
// polling it itself); the rest (stale sockets, umask, owner and mode, error advice) is the
// activation layer's, as for Node's listeners (./standalone).

import fs from 'node:fs';
import dns from 'node:dns/promises';
import net from 'node:net';
import * as native from 'distkit-spawn';
import { describeListenSpec } from './address';
import { errnoError, listenInPump, pumpAvailable, unlistenInPump, type OnPumpedConnection, type PumpedSocket } from './socket_pump';
import type { PeerAddress } from './connection';
import type { Listener, ListenerOpener, ListenTarget } from './standalone';

/** Receives every connection a pump listener accepted, with the listener's name. */
export type OnPumpedAccept = (socket: PumpedSocket, peer: PeerAddress, listener: string) => void;

/** Listeners on the socket pump, or undefined when the pump cannot open in this thread. */
export function pumpedListeners(onAccept: OnPumpedAccept): ListenerOpener | undefined {
  const opener: ListenerOpener = {
    async listen(name, target, backlog) {
      const fd = 'path' in target ? native.pumpBindUnix(target.path, backlog) : native.pumpBindTcp(await numericHost(target.host), target.port, backlog);
      if (fd < 0) throw errnoError(-fd, 'listen');
      // libuv unlinks the unix sockets it bound when they close; so do we.
      return serve(fd, name, target, 'path' in target ? `unix:${target.path}` : native.pumpSockName(fd));
    },
    async adopt(fd, name) {
      // An inherited unix listener is named by its fd, as Node's listeners print it.
      return serve(fd, name, undefined, native.pumpSockName(fd) || `fd:${fd}`);
    },
  };
  const serve = (fd: number, name: string, target: ListenTarget | undefined, address: string): Listener => {
    const onConnection: OnPumpedConnection = (socket, peer) => onAccept(socket, peer, name);
    let listener: number;
    try {
      listener = listenInPump(fd, onConnection);
    } catch (error) {
      // As a failed listen({fd}) of Node's closes it.
      fs.close(fd, () => undefined);
      throw error;
    }
    const path = target !== undefined && 'path' in target ? target.path : undefined;
    const bound = path === undefined ? undefined : identityOf(path);
    let open = true;
    return {
      name,
      address,
      close() {
        if (!open) return;
        open = false;
        unlistenInPump(listener);
        if (path !== undefined && bound !== undefined) unlinkIfSame(path, bound);
      },
    };
  };
  return pumpAvailable() ? opener : undefined;
}

/** The device and inode of the file at `p` (not followed), or undefined when there is none. */
function identityOf(p: string): { readonly dev: number; readonly ino: number } | undefined {
  try {
    const st = fs.lstatSync(p);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/**
 * Removes the socket file we bound at `p` when it is still that one: a server started since
 * (a restart that overlapped the drain) may have bound its own there. Best effort, as libuv's: a
 * server that dropped privileges may not remove a file root made in a directory of root's (the
 * classic -listen UNIX:/tmp/... -user nobody), and a stop must still drain and save its sessions.
 */
function unlinkIfSame(p: string, bound: { readonly dev: number; readonly ino: number }): void {
  const now = identityOf(p);
  if (now === undefined || now.dev !== bound.dev || now.ino !== bound.ino) return;
  try {
    fs.unlinkSync(p);
  } catch {
    // Left behind: the next start removes a stale socket it cannot connect to (./standalone).
  }
}

/** The address Node would bind for `host`: itself when numeric, else its first address. */
async function numericHost(host: string): Promise<string> {
  if (net.isIP(host) !== 0) return host;
  try {
    return (await dns.lookup(host)).address;
  } catch (error) {
    throw Object.assign(new Error(`getaddrinfo ${describeListenSpec({ kind: 'tcp', host, port: 0 })}`), { code: (error as NodeJS.ErrnoException).code, cause: error });
  }
}
