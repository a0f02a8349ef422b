// Ports for the tools that must be told a fixed one up front (systemd-socket-activate -l, an
// inetd.conf line, C distccd's --port, which refuses 0). Probing for a free port races with tests
// running in parallel: another server may take the port between the probe and the tool's bind.
// So a start that must name a port goes through onFreePort, which tries again on a fresh port
// when the tool reports the address in use. Our own servers (distccd with --port 0 too) bind
// port 0 and say the port they got in their "listening on=" line instead.

import net from 'node:net';

/** A loopback port that was free a moment ago (bind 0, read, close). The benchmarks use it too. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ host, port: 0 }, resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** What an attempt returns when its tool could not bind because the port was taken meanwhile. */
export const PORT_TAKEN: unique symbol = Symbol('port taken');

/** How many fresh ports to try: each retry means another process won a race for the last one. */
const TRIES = 5;

/** Runs `attempt` on a fresh port until it does not find the port taken. */
export async function onFreePort<T>(attempt: (port: number) => Promise<T | typeof PORT_TAKEN>, host = '127.0.0.1'): Promise<T> {
  for (let tries = 1; ; tries++) {
    const result = await attempt(await freePort(host));
    if (result !== PORT_TAKEN) return result;
    if (tries === TRIES) throw new Error(`${TRIES} fresh ports on ${host} were all taken before the program could bind them`);
  }
}

/** True when a program's output says a bind failed on an address in use (ours, C distccd, systemd-socket-activate, inetd). */
export function saysPortTaken(output: string): boolean {
  return /address (already )?in use/i.test(output);
}
