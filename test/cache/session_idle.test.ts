// Regression tests for "a silent client holds a connection forever" (the original has no read
// timeout): the idle bound is ours, off by default, and closes only a peer that makes no progress.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeAddPayload, encodeMessage, Operation } from '../../src/cache/wire/index';
import { RawPeer, startCacheServer } from './cache_server';
import { waitUntil } from '../support/wait_until';

const get = (uid: number, id: string): Buffer => encodeMessage({ isResponse: false, uid, operation: Operation.GET }, Buffer.from(id));

test('session closes a silent peer and logs it when an idle bound is set', async (t) => {
  const server = await startCacheServer({ idleMs: 200 });
  t.after(() => server.close());
  const silent = await RawPeer.connect(server.target);
  t.after(() => silent.destroy());
  const halfFrame = await RawPeer.connect(server.target);
  t.after(() => halfFrame.destroy());
  await halfFrame.write(get(1, 'k').subarray(0, 9));
  const started = Date.now();
  assert.equal((await silent.closed(5000)).length, 0);
  assert.equal((await halfFrame.closed(5000)).length, 0);
  assert.ok(Date.now() - started >= 150, 'closed before the idle bound');
  const idleCloses = (): string[] => server.lines.filter((l) => /^info: idle close conn=\d+ peer=127\.0\.0\.1:\d+ requests=0 idle_ms=200 buffered=\d+$/.test(l));
  await waitUntil(() => (idleCloses().length >= 2 ? true : undefined), 5000, () => server.lines.join('\n'));
  const idle = idleCloses();
  assert.equal(idle.length, 2, server.lines.join('\n'));
  assert.ok(idle.some((l) => / buffered=9$/.test(l)));
  assert.equal(server.engine.stats.connections, 0);
});

test('session keeps a peer that sends a request within every idle period', async (t) => {
  const server = await startCacheServer({ idleMs: 300 });
  t.after(() => server.close());
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  for (let i = 0; i < 8; i++) {
    await peer.write(get(i, 'k'));
    assert.equal((await peer.read(15)).readUInt32BE(5), i);
    await sleep(100);
  }
  assert.equal(peer.ended, false);
});

test('session closes a peer that stops reading its responses when an idle bound is set', async (t) => {
  const server = await startCacheServer({ idleMs: 300 });
  t.after(() => server.close());
  const peer = await RawPeer.connect(server.target);
  t.after(() => peer.destroy());
  const add = encodeMessage({ isResponse: false, uid: 1, operation: Operation.ADD }, encodeAddPayload({ timeoutMs: 60000, id: Buffer.from('big'), data: Buffer.alloc(30000, 7) }));
  peer.socket.pause(); // never reads: the server's writes back up
  const gets: Buffer[] = [];
  for (let i = 0; i < 400; i++) gets.push(get(2 + i, 'big'));
  peer.socket.write(Buffer.concat([add, ...gets]));
  const deadline = Date.now() + 5000;
  while (server.engine.stats.connections > 0 && Date.now() < deadline) await sleep(50);
  assert.equal(server.engine.stats.connections, 0, 'the server still holds the connection');
  assert.ok(server.lines.some((l) => /^info: idle close .*idle_ms=300/.test(l)), server.lines.join('\n'));
});

test('session keeps a silent peer when no idle bound is set (the default, as the original)', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const silent = await RawPeer.connect(server.target);
  t.after(() => silent.destroy());
  await sleep(500);
  assert.equal(silent.ended, false);
  assert.equal(server.engine.stats.connections, 1);
  await silent.write(get(1, 'k'));
  assert.equal((await silent.read(15)).readUInt32BE(5), 1);
});
