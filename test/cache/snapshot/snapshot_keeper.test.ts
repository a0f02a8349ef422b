// The snapshot on disk through SnapshotKeeper with a real MemoryStore and real files: a reload
// keeps each session's absolute expiry and drops what expired meanwhile, the file is 0600 and
// replaced atomically, and a damaged or foreign file is moved aside while the store starts empty.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger, type Level } from '../../../src/log/index';
import { MemoryStore } from '../../../src/cache/stores/memory_store';
import { SnapshotKeeper, type SnapshotStats } from '../../../src/cache/snapshot/snapshot_keeper';
import { tempDir } from '../../support/temp_dir';

function logged(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger('dc_server-test', { level: 'debug' });
  log.setSinks([{ write: (level: Level, line: string) => lines.push(`${level}: ${line}`) }]);
  return { log, lines };
}

function keeperAt(file: string, store: MemoryStore, now: number): { keeper: SnapshotKeeper; lines: string[] } {
  const { log, lines } = logged();
  return { keeper: new SnapshotKeeper(file, store, { clock: () => now, log, intervalMs: 0 }), lines };
}

test('snapshot keeper restores each session with its remaining TTL when loaded later', (t) => {
  const file = path.join(tempDir(t), 'dc_server.snapshot');
  const T0 = 1_700_000_000_000;
  const before = new MemoryStore({ capacity: 512 });
  before.add(T0, Buffer.from('short'), Buffer.from('a'), 5_000);
  before.add(T0, Buffer.from('long'), Buffer.from('b'), 60_000);
  before.add(T0, Buffer.from('edge'), Buffer.from('c'), 10_000);
  keeperAt(file, before, T0 + 1).keeper.stop();
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['dc_server.snapshot'], 'no temporary file left beside it');

  const after = new MemoryStore({ capacity: 512 });
  const { keeper, lines } = keeperAt(file, after, T0 + 10_000);
  assert.deepEqual(keeper.load(), { loaded: 2, expired: 1 });
  assert.equal(fs.existsSync(file), false, 'a loaded snapshot is removed: a crash must not load it twice');
  assert.equal(after.get(T0 + 10_000, Buffer.from('short')), undefined);
  // The clock only moves forward: the earlier expiry first.
  assert.equal(after.have(T0 + 10_000, Buffer.from('edge')), true);
  assert.equal(after.have(T0 + 10_001, Buffer.from('edge')), false);
  assert.deepEqual(after.get(T0 + 60_000, Buffer.from('long')), Buffer.from('b'), 'still there at its expiry instant');
  assert.equal(after.have(T0 + 60_001, Buffer.from('long')), false, 'gone just after it, as before the restart');
  assert.ok(lines.some((l) => /snapshot loaded .*sessions=2 expired=1/.test(l)), lines.join('\n'));
});

test('snapshot keeper replaces the previous snapshot when it writes again', (t) => {
  const file = path.join(tempDir(t), 's');
  const store = new MemoryStore({ capacity: 512 });
  store.add(0, Buffer.from('one'), Buffer.from('1'), 1e12);
  const { keeper } = keeperAt(file, store, 1);
  keeper.save('test');
  store.add(0, Buffer.from('two'), Buffer.from('2'), 1e12);
  keeper.save('test');
  const reloaded = new MemoryStore({ capacity: 512 });
  assert.deepEqual(keeperAt(file, reloaded, 2).keeper.load(), { loaded: 2, expired: 0 });
});

for (const [what, damage] of [
  ['truncated', (b: Buffer) => b.subarray(0, b.length - 3)],
  ['bit-flipped', (b: Buffer) => Buffer.from(b).fill(0x55, 30, 31)],
  ['foreign', () => Buffer.from('{"sessions": []}\n')],
] as const) {
  test(`snapshot keeper starts empty and moves the file aside when it is ${what}`, (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'dc_server.snapshot');
    const store = new MemoryStore({ capacity: 512 });
    store.add(0, Buffer.from('x'.repeat(20)), Buffer.from('y'.repeat(40)), 1e12);
    keeperAt(file, store, 1).keeper.stop();
    fs.writeFileSync(file, damage(fs.readFileSync(file)));
    const damaged = fs.readFileSync(file);

    const fresh = new MemoryStore({ capacity: 512 });
    const { keeper, lines } = keeperAt(file, fresh, 2);
    assert.deepEqual(keeper.load(), { loaded: 0, expired: 0 });
    assert.equal(fresh.size(2), 0);
    const aside = fs.readdirSync(dir).filter((f) => f.startsWith('dc_server.snapshot.bad-'));
    assert.equal(aside.length, 1, fs.readdirSync(dir).join(' '));
    assert.deepEqual(fs.readFileSync(path.join(dir, aside[0]!)), damaged, 'kept as it was');
    assert.equal(fs.existsSync(file), false);
    assert.ok(lines.some((l) => /^warning: snapshot rejected .*moved_to=/.test(l)), lines.join('\n'));
    // The next start finds nothing there and starts empty without a word of warning.
    const { keeper: next, lines: nextLines } = keeperAt(file, new MemoryStore({ capacity: 512 }), 3);
    assert.deepEqual(next.load(), { loaded: 0, expired: 0 });
    assert.ok(!nextLines.some((l) => l.startsWith('warning')), nextLines.join('\n'));
  });
}

test('snapshot keeper logs and keeps serving when the snapshot directory is gone', (t) => {
  const file = path.join(tempDir(t), 'missing-dir', 'dc_server.snapshot');
  const store = new MemoryStore({ capacity: 512 });
  store.add(0, Buffer.from('a'), Buffer.from('b'), 1e12);
  const { keeper, lines } = keeperAt(file, store, 1);
  keeper.stop();
  assert.ok(lines.some((l) => /^err: snapshot failed .*error=ENOENT/.test(l)), lines.join('\n'));
  assert.equal(store.size(1), 1);
});

test('snapshot keeper stats count each write and failure and what the load put back when writes fail and succeed', (t) => {
  const dir = path.join(tempDir(t), 'snapshots');
  fs.mkdirSync(dir);
  const file = path.join(dir, 's');
  const T0 = 1_700_000_000_000;
  const store = new MemoryStore({ capacity: 512 });
  store.add(T0, Buffer.from('one'), Buffer.from('1'), 60_000);
  store.add(T0, Buffer.from('two'), Buffer.from('22'), 60_000);
  const { keeper } = keeperAt(file, store, T0 + 5);
  const fresh: SnapshotStats = keeper.stats;
  assert.deepEqual(fresh, { load: { loaded: 0, expired: 0 }, writes: 0, failures: 0, lastWrite: undefined });
  keeper.save('test');
  const first = keeper.stats.lastWrite!;
  assert.equal(keeper.stats.writes, 1);
  assert.equal(first.atMs, T0 + 5);
  assert.equal(first.sessions, 2);
  assert.equal(first.bytes, fs.statSync(file).size);
  assert.ok(first.ms >= 0);
  fs.rmSync(dir, { recursive: true });
  keeper.save('test');
  assert.equal(keeper.stats.failures, 1);
  assert.equal(keeper.stats.writes, 1);
  assert.deepEqual(keeper.stats.lastWrite, first, 'a failed write leaves the last good one shown');
  fs.mkdirSync(dir);
  keeper.save('test');
  const reloaded = keeperAt(file, new MemoryStore({ capacity: 512 }), T0 + 10).keeper;
  reloaded.load();
  assert.deepEqual(reloaded.stats.load, { loaded: 2, expired: 0 });
});
