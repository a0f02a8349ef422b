// A loopback port that was free a moment ago (bind 0, read, close), for tools that need a fixed
// one: systemd-socket-activate -l, an inetd.conf line, a C server's --port. Shared by the tests
// and the benchmarks.

import net from 'node:net';

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ host, port: 0 }, resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
