// dc_server -snapshot with the real program: sessions acknowledged before SIGTERM or SIGINT are
// all there after the next start, with the expiry they had (not a fresh TTL); a corrupt snapshot
// is moved aside and the server starts empty; with -snapshot-interval a SIGKILL loses at most the
// sessions of the last interval.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/index';
import { tempDir, type AfterHook } from '../support/temp_dir';
import { Program, dialOf } from './cache_harness';

/** Starts dc_server with -snapshot; `loads` waits for its log line about the snapshot it read. */
async function startServer(t: AfterHook, snapshot: string, options: { extra?: readonly string[]; loads?: RegExp } = {}): Promise<{ server: Program; client: CacheClient }> {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', '-sessions', '100000', '-snapshot', snapshot, ...(options.extra ?? [])]);
  let client: CacheClient | undefined;
  t.after(() => {
    client?.destroy();
    return server.stop();
  });
  const [address] = await server.listening();
  if (options.loads !== undefined) await server.waitFor(options.loads);
  client = await CacheClient.connect(dialOf(address!) as { host: string; port: number });
  return { server, client };
}

const idOf = (i: number): string => `session-${i}`;
const dataOf = (i: number): string => `tls-secret-${i}-${'s'.repeat(i % 200)}`;

/** ADDs ids [from, to) in pipelined batches; returns how many were acknowledged OK. */
async function addRange(client: CacheClient, from: number, to: number, ttlMs: number): Promise<number> {
  let ok = 0;
  for (let i = from; i < to; i += 100) {
    const batch = Array.from({ length: Math.min(100, to - i) }, (_, k) => client.add(idOf(i + k), dataOf(i + k), ttlMs));
    ok += (await Promise.all(batch)).filter((s) => s === Status.OK).length;
  }
  return ok;
}

/** The ids in [from, to) that read back with their data. */
async function present(client: CacheClient, from: number, to: number): Promise<Set<number>> {
  const found = new Set<number>();
  const ids = Array.from({ length: to - from }, (_, k) => from + k);
  const got = await Promise.all(ids.map((i) => client.get(idOf(i))));
  got.forEach((g, k) => {
    if (g !== null && g.toString() === dataOf(ids[k]!)) found.add(ids[k]!);
  });
  return found;
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`dc_server keeps every acknowledged session with its remaining TTL when restarted by ${signal}`, async (t) => {
    const snapshot = path.join(tempDir(t), 'dc_server.snapshot');
    const first = await startServer(t, snapshot);
    assert.equal(await addRange(first.client, 0, 2000, 600_000), 2000);
    // Short-lived ones: they must expire at their original instant, not a fresh TTL after the restart.
    const SHORT_MS = 4000;
    const shortAddedAt = Date.now();
    assert.equal(await addRange(first.client, 2000, 2050, SHORT_MS), 50);
    process.kill(first.server.pid, signal);
    assert.deepEqual(await first.server.exited, { code: 0, signal: null }, first.server.output);
    assert.match(first.server.output, /snapshot written .*why=stop sessions=2050/);
    assert.equal(fs.statSync(snapshot).mode & 0o777, 0o600);

    const second = await startServer(t, snapshot, { loads: /snapshot loaded .*/ });
    assert.match(second.server.output, /snapshot loaded .*sessions=2050 expired=0/);
    assert.equal((await present(second.client, 0, 2000)).size, 2000, 'a long-lived session was lost');
    if (Date.now() < shortAddedAt + SHORT_MS - 500) assert.equal((await present(second.client, 2000, 2050)).size, 50);
    await sleep(Math.max(0, shortAddedAt + SHORT_MS + 200 - Date.now()));
    assert.equal((await present(second.client, 2000, 2050)).size, 0, 'short-lived sessions outlived their TTL: the restart renewed it');
    assert.equal((await present(second.client, 0, 2000)).size, 2000);
  });
}

test('dc_server writes every acknowledged session and exits 0 when a second stop signal comes while it stops', async (t) => {
  // Ctrl-C reaches the daemon and its supervisor, which then sends SIGTERM too; an operator may
  // kill twice. The signal that comes after the drain, while the snapshot is written, must not
  // find the default action back (death by SIGTERM, the snapshot never written).
  const snapshot = path.join(tempDir(t), 'dc_server.snapshot');
  const first = await startServer(t, snapshot);
  const SESSIONS = 50_000;
  assert.equal(await addRange(first.client, 0, SESSIONS, 600_000), SESSIONS);
  process.kill(first.server.pid, 'SIGINT');
  await first.server.waitFor(/notice: stopped/);
  process.kill(first.server.pid, 'SIGTERM');
  assert.deepEqual(await first.server.exited, { code: 0, signal: null }, first.server.output);
  assert.match(first.server.output, new RegExp(`snapshot written .*why=stop sessions=${SESSIONS}`));

  const second = await startServer(t, snapshot, { loads: /snapshot loaded .*/ });
  assert.match(second.server.output, new RegExp(`snapshot loaded .*sessions=${SESSIONS} expired=0`));
  assert.equal((await present(second.client, 0, SESSIONS)).size, SESSIONS);
});

test('dc_server starts empty and moves the snapshot aside when the file is corrupt', async (t) => {
  const dir = tempDir(t);
  const snapshot = path.join(dir, 'dc_server.snapshot');
  const first = await startServer(t, snapshot);
  assert.equal(await addRange(first.client, 0, 100, 600_000), 100);
  process.kill(first.server.pid, 'SIGTERM');
  await first.server.exited;
  const bytes = fs.readFileSync(snapshot);
  bytes[bytes.length >> 1] ^= 0x40;
  fs.writeFileSync(snapshot, bytes);

  const second = await startServer(t, snapshot, { loads: /snapshot rejected/ });
  assert.match(second.server.output, /snapshot rejected .*why="checksum mismatch.*moved_to=\S+\.bad-/);
  assert.equal((await present(second.client, 0, 100)).size, 0);
  assert.equal(await addRange(second.client, 100, 110, 600_000), 10, 'the server serves after starting empty');
  const aside = fs.readdirSync(dir).filter((f) => f.startsWith('dc_server.snapshot.bad-'));
  assert.equal(aside.length, 1, fs.readdirSync(dir).join(' '));
  assert.deepEqual(fs.readFileSync(path.join(dir, aside[0]!)), bytes);
});

test('dc_server loses at most the last -snapshot-interval of sessions when SIGKILLed', async (t) => {
  const snapshot = path.join(tempDir(t), 'dc_server.snapshot');
  const INTERVAL_MS = 1000;
  const first = await startServer(t, snapshot, { extra: ['-snapshot-interval', String(INTERVAL_MS / 1000), '-loglevel', 'info'] });
  // A steady writer for about 3.5 intervals, remembering when each session was acknowledged.
  const ackedAt: number[] = [];
  const until = Date.now() + 3.5 * INTERVAL_MS;
  for (let i = 0; Date.now() < until; i += 20) {
    const batch = await Promise.all(Array.from({ length: 20 }, (_, k) => first.client.add(idOf(i + k), dataOf(i + k), 600_000)));
    const now = Date.now();
    batch.forEach((s) => {
      assert.equal(s, Status.OK);
      ackedAt.push(now);
    });
    await sleep(5);
  }
  const killedAt = Date.now();
  process.kill(first.server.pid, 'SIGKILL');
  await first.server.exited;
  assert.match(first.server.output, /snapshot written .*why=interval/);

  const second = await startServer(t, snapshot, { loads: /snapshot loaded/ });
  const found = await present(second.client, 0, ackedAt.length);
  const lost = ackedAt.map((at, i) => ({ at, i })).filter(({ i }) => !found.has(i));
  const oldestLostAgeMs = lost.length === 0 ? 0 : killedAt - Math.min(...lost.map((l) => l.at));
  t.diagnostic(`SIGKILL after ${ackedAt.length} acknowledged ADDs: ${lost.length} lost, the oldest acknowledged ${oldestLostAgeMs} ms before the kill (interval ${INTERVAL_MS} ms)`);
  assert.ok(found.size > 0, 'nothing survived: no periodic snapshot was loaded');
  // One interval, plus the timer's lateness and the write itself on a busy machine.
  assert.ok(oldestLostAgeMs <= INTERVAL_MS + 1000, `a session acknowledged ${oldestLostAgeMs} ms before the kill was lost`);
});
