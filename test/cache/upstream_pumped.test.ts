// dc_client's upstream connection on the native socket pump: once connected it leaves Node's
// stream for the pump, its requests and the server's answers go through the pump, and a server
// that drops it is noticed there (requests it had are answered DISCONNECTED) and the pumped
// socket is let go.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pumpedSockets } from '../../src/activation/socket_pump';
import type { UpstreamAnswer } from '../../src/cache/proxy/upstream';
import { encodeMessage, MessageReader, Operation } from '../../src/cache/wire/index';
import { until } from './pumped_peer';
import { upstreamTo } from './upstream_peer';

test('Upstream moves its connection to the socket pump once connected and is answered through it until the server drops it', async (t) => {
  // A plain Node server: answers each request with its own payload reversed, except payload
  // "hold", which it keeps (the request is in flight when the server drops the connection).
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const reader = new MessageReader('request');
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let next = reader.next(); next.kind === 'ok'; next = reader.next()) {
        const { uid, operation, payload } = next.value;
        if (payload.toString() === 'hold') continue;
        socket.write(encodeMessage({ isResponse: true, uid, operation }, Buffer.from(payload).reverse()));
      }
    });
  });
  const { upstream, states } = await upstreamTo(t, server, sockets, 60_000);
  const before = pumpedSockets();
  upstream.start();
  await until(() => upstream.connected && pumpedSockets() === before + 1);
  const ask = (payload: string): Promise<UpstreamAnswer> => new Promise((resolve) => upstream.send(Operation.GET, Buffer.from(payload), resolve));
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => ask(`request-${i}`)));
  answers.forEach((answer, i) => {
    assert.equal(answer.kind, 'response');
    assert.equal(answer.kind === 'response' && answer.payload.toString(), Buffer.from(`request-${i}`).reverse().toString());
  });
  const held = ask('hold');
  await until(() => sockets.size === 1 && upstream.inFlight === 1);
  for (const s of sockets) s.destroy();
  assert.deepEqual(await held, { kind: 'disconnected' });
  assert.deepEqual(states, ['connected', 'down']);
  await until(() => pumpedSockets() === before);
});
