// Regression test: after a malformed request the server answered the requests before it, sent
// FIN and closed its socket at once. A peer still sending then got a reset, and a peer that had
// not read its answers yet lost them (its next write failed and the connection was torn down
// with the answers unread). The server now keeps reading and discarding until the peer closes
// its side (bounded by DROP_GRACE_MS), so the answers survive, as the protocol page promises.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeMessage, Operation } from '../../src/cache/wire/index';
import { startCacheServer } from './cache_server';
import { waitUntil } from '../support/wait_until';

test('session delivers the answers before a malformed request to a peer that keeps sending and reads late', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const get = (uid: number): Buffer => encodeMessage({ isResponse: false, uid, operation: Operation.GET }, Buffer.from('k'));
  for (let round = 0; round < 5; round++) {
    const socket = net.connect({ ...(server.target as { host: string; port: number }), allowHalfOpen: true });
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.pause(); // not reading yet
    const received: Buffer[] = [];
    let error = '';
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(Buffer.concat([get(1), get(2), Buffer.from('GET / HTTP/1.1\r\n')]));
    // The server answers both GETs and drops the connection.
    await waitUntil(() => (server.engine.stats.dropped === round + 1 ? true : undefined), 5000, () => `round ${round}: not dropped`);
    for (let i = 0; i < 20 && !socket.destroyed; i++) {
      socket.write(Buffer.alloc(1000, 0x41)); // the rest of the peer's garbage
      await sleep(5);
    }
    if (!socket.destroyed) socket.end();
    socket.on('data', (d: Buffer) => received.push(d));
    socket.resume();
    await closed;
    const all = Buffer.concat(received);
    assert.equal(all.length, 30, `round ${round}: got ${all.length} bytes of the two answers (socket error: ${error || 'none'})`);
    assert.deepEqual([all.readUInt32BE(5), all.readUInt32BE(20)], [1, 2]);
  }
  assert.equal(server.engine.stats.dropped, 5);
});
