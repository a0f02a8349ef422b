// TCP_DEFER_ACCEPT on a bound listener (C distccd: dcc_defer_accept in srvnet.c): the kernel
// queues a connection for accept() once its first bytes have arrived, not at the handshake. Only
// for protocols whose client speaks first, as distcc's does (it sends DIST right after
// connecting): the daemon then wakes once per job, with the request already readable. A connect
// that sends nothing is not kept out, only delayed: Linux hands it over when the deferral is over
// (about a second for 1). Node has no setsockopt, so the call is in the native addon; the module
// is imported by the programs that want it, not by the activation layer itself.

import type net from 'node:net';
import * as native from 'distkit-spawn';
import { handleFd } from './handle_fd';

/** Sets TCP_DEFER_ACCEPT to `seconds` (0: off) on a listening server; throws with the errno. */
export function deferAccept(server: net.Server, seconds: number): void {
  const fd = handleFd(server);
  if (fd === undefined) throw new Error('the listener has no descriptor');
  native.deferAccept(fd, seconds);
}
