// dc_client's upstream after it loses its server: the next connection is tried one -retry period
// after the loss, as C's server_dead_util stamps last_fail. Tried at once, it reached a server
// that was SIGKILLed but still completing handshakes while the kernel tore its memory down, and
// a pool that prefers that server sent it the next requests, lost in turn (dc_client_failover).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { upstreamTo } from './upstream_peer';

test('Upstream tries its server again one retry period after losing it, not at once', async (t) => {
  const RETRY_MS = 400;
  // A server that takes each connection and, the first time, drops it as a dying server would.
  const arrivals: number[] = [];
  const sockets = new Set<net.Socket>();
  let lostAt = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    arrivals.push(Date.now());
    if (arrivals.length === 1) {
      setTimeout(() => {
        lostAt = Date.now();
        socket.destroy();
      }, RETRY_MS + 100); // older than a retry period, as a server in use for a while
    }
  });
  const { upstream, states } = await upstreamTo(t, server, sockets, RETRY_MS);
  upstream.start();
  // Time itself is under test: the second connection, once it comes.
  const deadline = Date.now() + 10_000;
  while (arrivals.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(arrivals.length, 2, 'the upstream reconnected');
  assert.deepEqual(states.slice(0, 2), ['connected', 'down']);
  // The timer may fire a millisecond early by Date's clock; never a period early.
  assert.ok(arrivals[1]! - lostAt >= RETRY_MS - 5, `reconnected ${arrivals[1]! - lostAt} ms after the loss, retry is ${RETRY_MS} ms`);
});
