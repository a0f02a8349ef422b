// The descriptor under a net.Socket or net.Server, for the few calls Node has no API for (the
// addon's native answer, TCP_DEFER_ACCEPT). `_handle.fd` is not public API, but TCP and Pipe
// handles have carried it since Node 0.x; undefined when there is no handle (closed, not yet
// listening) or it has no descriptor.

import type net from 'node:net';

export function handleFd(target: net.Socket | net.Server): number | undefined {
  const fd = (target as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
