// dc_server's -idle bound (ours; the original has no read timeout): a silent client is closed and
// logged after the bound, an active one is kept, and without -idle nobody is closed (default).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheClient } from '../../src/cache/client';
import { startServerProgram } from '../fuzz/server_program';
import { waitUntil } from '../support/wait_until';

function silent(target: { host: string; port: number }): Promise<{ socket: net.Socket; closedAt: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(target, () => resolve({ socket, closedAt: new Promise((r) => socket.on('close', () => r(Date.now()))) }));
    socket.on('error', reject);
  });
}

test('dc_server -idle closes a silent client after the bound and keeps an active one', async (t) => {
  const p = await startServerProgram(['-idle', '400', '-loglevel', 'info']);
  t.after(() => p.stop());
  const started = Date.now();
  const quiet = await silent(p.target);
  t.after(() => quiet.socket.destroy());
  const active = await CacheClient.connect(p.target);
  t.after(() => active.destroy());
  for (let i = 0; i < 10; i++) {
    assert.equal(await active.have('k'), false);
    await sleep(100);
  }
  const closedAt = await Promise.race([quiet.closedAt, sleep(5000, -1, { ref: false })]);
  assert.ok(closedAt > 0, 'the silent client was not closed');
  assert.ok(closedAt - started >= 350, `closed after ${closedAt - started} ms, before the bound`);
  assert.equal(await active.have('k'), false, 'the active client was closed');
  await waitUntil(() => (p.lines.some((l) => /idle close .*idle_ms=400/.test(l)) ? true : undefined), 10_000, () => p.lines.join('\n'));
});

test('dc_server keeps a silent client open when no -idle is given', async (t) => {
  const p = await startServerProgram([]);
  t.after(() => p.stop());
  const quiet = await silent(p.target);
  t.after(() => quiet.socket.destroy());
  const closedAt = await Promise.race([quiet.closedAt, sleep(1500, -1, { ref: false })]);
  assert.equal(closedAt, -1, 'a silent client was closed without -idle');
});
