// The compact store under churn: a full cache taking ADDs of mixed sizes (evictions) and short
// timeouts (expiry) must reuse the slots and blocks it frees, so the process's resident memory
// stops growing once the cache is full. A bounded run: a fixed count of operations, no time limit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { SlabStore } from '../../../src/cache/stores/slab_store';
import { forceGc, spread } from '../../support/memory';
import { seededRandom } from '../random';

function residentBytes(): number {
  forceGc();
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]) * 1024;
}

test('SlabStore keeps resident memory flat when 400000 ADDs of mixed sizes churn through a full cache', () => {
  const capacity = 20_000;
  const store = new SlabStore({ capacity });
  const rand = seededRandom(17);
  const data = Buffer.alloc(4200, 0x5a);
  const id = Buffer.alloc(32, 0x69);
  const total = 400_000;
  const warmUp = 150_000;
  const rss: number[] = [];
  const reserved: number[] = [];
  let now = 0;
  for (let i = 0; i < total; i++) {
    id.writeUInt32BE(i, 0);
    // Mostly SSL-session sized, some 4 KB (client certificates); one in four expires soon.
    const size = rand(4) === 0 ? 3000 + rand(1200) : 100 + rand(200);
    const timeout = rand(4) === 0 ? rand(50) : 1_000_000;
    assert.equal(store.add(now, id, data.subarray(0, size), timeout), true);
    if (i % 7 === 0) store.get(now, id);
    if (i % 1000 === 0) now++;
    if (i >= warmUp && i % 50_000 === 0) {
      rss.push(residentBytes());
      reserved.push(store.reservedBytes);
    }
  }
  assert.ok(store.stats.evicted > 100_000 && store.stats.expired > 1000, `churn: ${JSON.stringify(store.stats)}`);
  // ~20000 sessions of ~1 KB average are ~20 MB; keeping the freed blocks of 250,000 evicted and
  // expired sessions would take hundreds of MB.
  const slabs = spread(reserved);
  assert.ok(slabs.spread <= 8 * 1048576, `store reserved MB moved after warm-up: ${slabs.text}`);
  const resident = spread(rss);
  if (process.env.DISTKIT_SHOW_MEMORY) console.log(`RSS MB after warm-up: ${resident.text}; reserved MB: ${slabs.text}`);
  assert.ok(resident.spread <= 16 * 1048576, `RSS moved by ${(resident.spread / 1048576).toFixed(1)} MB after warm-up: ${resident.text}`);
});
