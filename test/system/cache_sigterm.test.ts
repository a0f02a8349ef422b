// SIGTERM with cache clients in the middle of their pipelines: every ADD the server acknowledged
// stays readable (over connections opened before the signal) until the process exits, new
// connections are refused, and the process exits 0 once its clients are done.
// Runs dc_server when it is built, else the engine behind the same activation layer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/index';
import { startLoadServer } from '../load/cache_load';
import { waitUntil } from '../support/wait_until';

test('cache server keeps every acknowledged ADD readable after SIGTERM until it exits 0', async (t) => {
  // Capacity above what the writers can add in the test, so nothing is evicted.
  const { program } = await startLoadServer(1_000_000);
  t.after(() => program.stop());
  const writers = await Promise.all(Array.from({ length: 8 }, () => CacheClient.connect(program.target)));
  const reader = await CacheClient.connect(program.target);
  t.after(() => [...writers, reader].forEach((c) => c.destroy()));
  const acked: Array<{ id: string; data: string }> = [];
  let signalled = false;
  const failures: string[] = [];
  const write = async (c: CacheClient, w: number): Promise<void> => {
    for (let i = 0; !signalled && i < 1_000_000; i += 32) {
      const batch = Array.from({ length: 32 }, (_, k) => ({ id: `w${w}-${i + k}`, data: `data-${w}-${i + k}-${'x'.repeat((i + k) % 300)}` }));
      const statuses = await Promise.all(batch.map((b) => c.add(b.id, b.data, 600_000).catch((e: Error) => e)));
      statuses.forEach((s, k) => {
        if (s === Status.OK) acked.push(batch[k]!);
        else if (!(s instanceof Error)) failures.push(`ADD ${batch[k]!.id} answered ${String(s)}`);
      });
    }
  };
  const writing = writers.map((c, w) => write(c, w));
  await waitUntil(() => (acked.length > 100 ? true : undefined), 10_000, () => `only ${acked.length} ADDs acknowledged`);
  // Mid-pipeline: each writer has up to 32 ADDs in flight.
  process.kill(program.pid, 'SIGTERM');
  signalled = true;
  await Promise.all(writing);
  assert.deepEqual(failures, []);
  assert.ok(acked.length > 100, `only ${acked.length} ADDs were acknowledged`);
  // New connections are refused once the signal is handled (the listeners close before "draining").
  await waitUntil(() => (program.lines.some((l) => /draining/.test(l)) ? true : undefined), 10_000, () => program.lines.join('\n'));
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect(program.target);
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
  assert.ok(refused, 'the server still accepts connections after SIGTERM');
  // Every acknowledged ADD reads back over a connection opened before the signal.
  const got = await Promise.all(acked.map((a) => reader.get(a.id)));
  const missing = acked.filter((a, i) => got[i] === null || got[i]!.toString() !== a.data);
  assert.equal(missing.length, 0, `${missing.length} of ${acked.length} acknowledged ADDs unreadable, e.g. ${missing[0]?.id}`);
  assert.ok(program.alive(), 'the server exited while clients were still connected');
  await Promise.all([...writers, reader].map((c) => c.close()));
  const exit = await Promise.race([program.exited, sleep(10_000, 'still running', { ref: false })]);
  assert.deepEqual(exit, { code: 0, signal: null }, program.lines.join('\n'));
});
