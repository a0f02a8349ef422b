// What the Upstream tests share: a plain Node server on loopback port 0, closed with its sockets
// after the test, and an Upstream to it, started, with a silent log and its states recorded.

import net from 'node:net';
import { Upstream } from '../../src/cache/proxy/upstream';
import { createLogger } from '../../src/log/index';

/** `server` listening on 127.0.0.1 port 0 (its sockets in `sockets`), closed after the test; an
 * Upstream to it retrying every `retryMs`, stopped after the test. */
export async function upstreamTo(
  t: { after(fn: () => unknown): void },
  server: net.Server,
  sockets: Set<net.Socket>,
  retryMs: number,
): Promise<{ upstream: Upstream; states: string[] }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  const log = createLogger('upstream-test');
  log.setSinks([]);
  const states: string[] = [];
  const upstream = new Upstream({ kind: 'tcp', host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }, { retryMs, log, onState: (s) => states.push(s) });
  t.after(() => upstream.stop());
  return { upstream, states };
}
