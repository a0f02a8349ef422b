// The disk tier against a plain model of an LRU store with a size limit (fast-check), and its
// failure modes: a corrupt file is a miss and is removed, an unwritable directory turns writes
// off with one log line until they work again, entries survive a restart, and two stores (two
// daemons) on one directory never see a torn entry.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { DiskStore, LOW_WATER, TOUCH_INTERVAL_MS } from '../../../src/compile/object_cache/disk_store';
import { createLogger, type LogSink } from '../../../src/log/index';
import { tempDir } from '../../support/temp_dir';

const keyOf = (n: number): string => createHash('sha256').update(String(n)).digest('hex');
const valueOf = (n: number, size: number): Buffer => Buffer.alloc(size, n & 0xff);

function logger(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const log = createLogger('t', { level: 'debug' });
  const sink: LogSink = { write: (_level, line) => lines.push(line) };
  log.setSinks([sink]);
  return { log, lines };
}

/** Bytes of the entry files under `dir`, by key. */
async function onDisk(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const sub of await fs.readdir(dir)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of await fs.readdir(path.join(dir, sub))) out.set(name, (await fs.stat(path.join(dir, sub, name))).size);
  }
  return out;
}

/** The model: entries with their last use; over the limit, the least recently used go until LOW_WATER. */
class Model {
  /** `used`: the mtime; `touched`: when the store last set it (a get sets it again only TOUCH_INTERVAL_MS later). */
  readonly entries = new Map<string, { size: number; used: number; touched: number }>();
  constructor(readonly max: number) {}
  get bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.size;
    return n;
  }
  put(key: string, size: number, now: number): void {
    if (size > this.max) return;
    const known = this.entries.get(key);
    if (known !== undefined) {
      known.used = known.touched = now;
      return;
    }
    if (this.bytes + size > this.max) {
      const order = [...this.entries].sort(([ka, a], [kb, b]) => a.used - b.used || (ka < kb ? -1 : 1));
      let total = this.bytes;
      for (const [k, e] of order) {
        if (total + size <= this.max * LOW_WATER) break;
        this.entries.delete(k);
        total -= e.size;
      }
    }
    this.entries.set(key, { size, used: now, touched: now });
  }
  get(key: string, now: number): boolean {
    const e = this.entries.get(key);
    if (e !== undefined && now - e.touched >= TOUCH_INTERVAL_MS) e.used = e.touched = now;
    return e !== undefined;
  }
}

test('DiskStore agrees with an LRU model and stays under its size when puts and gets come in any order', async (t) => {
  const root = tempDir(t, 'distkit-disk-');
  const op = fc.oneof(
    fc.record({ kind: fc.constant('put' as const), n: fc.integer({ min: 0, max: 11 }), size: fc.integer({ min: 1, max: 1500 }), ms: fc.integer({ min: 1, max: 2 * TOUCH_INTERVAL_MS }) }),
    fc.record({ kind: fc.constant('get' as const), n: fc.integer({ min: 0, max: 11 }), ms: fc.integer({ min: 1, max: 2 * TOUCH_INTERVAL_MS }) }),
  );
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1000, max: 6000 }), async (ops, max) => {
      const dir = path.join(root, String(run++));
      let clock = 1_000_000;
      const now = () => clock;
      const { log } = logger();
      const store = await DiskStore.open({ dir, maxBytes: max, now }, log);
      const model = new Model(max);
      const sizes = new Map<number, number>();
      for (const o of ops) {
        clock += o.ms;
        if (o.kind === 'put') {
          // One key, one content (content-addressed): the first size given for n is its size.
          const size = sizes.get(o.n) ?? o.size;
          sizes.set(o.n, size);
          await store.put(keyOf(o.n), valueOf(o.n, size));
          model.put(keyOf(o.n), size, clock);
        } else {
          const got = await store.get(keyOf(o.n));
          assert.equal(got !== undefined, model.get(keyOf(o.n), clock), `get ${o.n}`);
          if (got !== undefined) assert.deepEqual(got, valueOf(o.n, sizes.get(o.n)!));
        }
        const disk = await onDisk(dir);
        assert.deepEqual([...disk.keys()].sort(), [...model.entries.keys()].sort());
        let total = 0;
        for (const size of disk.values()) total += size;
        assert.ok(total <= max, `${total} bytes on disk, over ${max}`);
        assert.equal(store.stats.bytes, total);
      }
      await store.close();
      // A restart finds the same entries and the same size.
      const again = await DiskStore.open({ dir, maxBytes: max, now }, log);
      assert.equal(again.stats.bytes, model.bytes);
      assert.equal(again.entries, model.entries.size);
      for (const key of model.entries.keys()) assert.ok((await again.get(key)) !== undefined);
    }),
    { numRuns: 60 },
  );
});

test('DiskStore removes an entry and answers a miss when the entry fails validation', async (t) => {
  const dir = tempDir(t, 'distkit-disk-');
  const { log, lines } = logger();
  const store = await DiskStore.open({ dir, maxBytes: 1 << 20, validate: (_key, bytes) => bytes[0] === 1 }, log);
  await store.put(keyOf(1), valueOf(1, 100));
  await store.put(keyOf(2), valueOf(2, 100));
  assert.deepEqual(await store.get(keyOf(1)), valueOf(1, 100));
  assert.equal(await store.get(keyOf(2)), undefined);
  assert.deepEqual([...(await onDisk(dir)).keys()], [keyOf(1)]);
  assert.equal(store.stats.errors, 1);
  assert.equal(lines.filter((l) => /object cache entry corrupt: removed/.test(l)).length, 1);
  assert.equal(await store.get('../../etc/passwd'), undefined, 'a key that is not one is a miss');
});

test('DiskStore logs once and counts each failure when its directory cannot be written, then recovers', async (t) => {
  const dir = tempDir(t, 'distkit-disk-');
  const { log, lines } = logger();
  const store = await DiskStore.open({ dir, maxBytes: 1 << 20 }, log);
  // A file where the temp directory was: every write fails (ENOTDIR), whoever runs the test (root too).
  await fs.rm(path.join(dir, 'tmp'), { recursive: true });
  await fs.writeFile(path.join(dir, 'tmp'), '');
  for (let n = 0; n < 3; n++) await store.put(keyOf(n), valueOf(n, 10));
  assert.equal(store.stats.errors, 3);
  assert.equal(store.stats.stores, 0);
  assert.equal(store.stats.bytes, 0);
  assert.equal(lines.filter((l) => /object cache cannot write/.test(l)).length, 1);
  await fs.rm(path.join(dir, 'tmp'));
  await fs.mkdir(path.join(dir, 'tmp'));
  await store.put(keyOf(9), valueOf(9, 10));
  assert.equal(store.stats.stores, 1);
  assert.ok(lines.some((l) => /object cache writable again/.test(l)));
  assert.deepEqual(await store.get(keyOf(9)), valueOf(9, 10));
});

test('DiskStore makes its directory when missing and refuses a size of 0', async (t) => {
  const root = tempDir(t, 'distkit-disk-');
  const { log } = logger();
  const store = await DiskStore.open({ dir: path.join(root, 'a/b/cache'), maxBytes: 1000 }, log);
  assert.equal(store.entries, 0);
  assert.ok((await fs.stat(path.join(root, 'a/b/cache/tmp'))).isDirectory());
  await assert.rejects(DiskStore.open({ dir: path.join(root, 'c'), maxBytes: 0 }, log), RangeError);
});

test('two DiskStores on one directory serve whole entries and stay near the size when they write at once', async (t) => {
  const dir = tempDir(t, 'distkit-disk-');
  const { log } = logger();
  const max = 64 * 1024;
  const [a, b] = await Promise.all([DiskStore.open({ dir, maxBytes: max }, log), DiskStore.open({ dir, maxBytes: max }, log)]);
  const size = 3000;
  await Promise.all([a, b].map(async (store, who) => {
    for (let n = who; n < 200; n += 2) {
      await store.put(keyOf(n), valueOf(n, size));
      // The other store's latest entry: whole, or gone (evicted), never torn.
      const got = await store.get(keyOf(n - 1));
      if (got !== undefined) assert.deepEqual(got, valueOf(n - 1, size));
    }
  }));
  let total = 0;
  for (const s of (await onDisk(dir)).values()) total += s;
  // Each store sees the other's writes at its next listing (at most RESCAN_FRACTION of the size later).
  assert.ok(total <= max * 1.25, `${total} bytes, limit ${max}`);
  assert.ok(total > 0);
});

test('DiskStore logs once and keeps serving what it holds when its disk is full', { skip: process.getuid?.() !== 0 && 'needs root to mount a small tmpfs' }, async (t) => {
  const { execFileSync } = await import('node:child_process');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-disk-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    await fs.rmdir(dir);
    t.skip('cannot mount a tmpfs here');
    return;
  }
  // Unmounted before the directory goes (a temp dir's own hook would run first and fail on the mount point).
  t.after(async () => {
    execFileSync('umount', [dir]);
    await fs.rmdir(dir);
  });
  const { log, lines } = logger();
  // A size limit far above the disk: the disk fills first.
  const store = await DiskStore.open({ dir, maxBytes: 1 << 30 }, log);
  for (let n = 0; n < 12; n++) await store.put(keyOf(n), valueOf(n, 16 * 1024));
  assert.ok(store.stats.stores >= 1 && store.stats.stores < 12, `stored ${store.stats.stores}`);
  assert.equal(store.stats.errors, 12 - store.stats.stores);
  assert.equal(lines.filter((l) => /object cache cannot write.*reason=ENOSPC/.test(l)).length, 1);
  assert.deepEqual(await store.get(keyOf(0)), valueOf(0, 16 * 1024), 'what was stored is still served');
  assert.deepEqual(await fs.readdir(path.join(dir, 'tmp')), [], 'no partial file is left behind');
});
