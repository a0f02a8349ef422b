// Regression test for the C dc_server's leak of evicted sessions (it dropped them from its index
// but never freed their buffers): 10^5 ADDs into a full cache through the engine's request path
// must leave live memory flat after warm-up. The 10^6 version runs in `npm run load`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCacheEngine } from '../../src/cache/engine';
import { MemoryStore } from '../../src/cache/stores/memory_store';
import { createLogger } from '../../src/log/index';
import { encodeAddPayload, Operation, Status, type Message } from '../../src/cache/wire/index';
import { liveBytes, spread } from '../support/memory';

test('engine memory stays flat when 100000 ADDs churn through a full cache (evicted sessions are freed)', () => {
  const log = createLogger('churn-test', { level: 'err' });
  log.setSinks([]);
  const capacity = 5000;
  const store = new MemoryStore({ capacity });
  const engine = createCacheEngine({ store, log, clock: () => 1_000_000 });
  const data = Buffer.alloc(1000, 0x5a);
  const add = (i: number): Message => {
    const id = Buffer.alloc(32);
    id.writeUInt32BE(i, 0);
    data.writeUInt32BE(i, 0);
    return { isResponse: false, uid: i, operation: Operation.ADD, frames: 1, payload: encodeAddPayload({ timeoutMs: 600_000, id, data }) };
  };
  const samples: number[] = [];
  const total = 100_000;
  for (let i = 0; i < total; i++) {
    const answer = engine.answer(add(i));
    assert.ok(answer.kind === 'respond' && answer.bytes[answer.bytes.length - 1] === Status.OK);
    // Warm-up: the cache fills in the first 5000; sample from 20000 on, every 10000.
    if (i >= 20_000 && i % 10_000 === 0) samples.push(liveBytes());
  }
  samples.push(liveBytes());
  const held = store.size(1_000_000);
  assert.ok(held > capacity - store.evictionBatch && held <= capacity, `${held} sessions held`);
  assert.ok(store.stats.evicted >= total - capacity, `evicted ${store.stats.evicted}`);
  // ~5000 sessions of ~1.2 KB are ~6 MB; a leak of the evicted 95000 would be ~110 MB.
  const { spread: s, text } = spread(samples);
  if (process.env.DISTKIT_SHOW_MEMORY) console.log(`live MB after warm-up: ${text}`);
  assert.ok(s < 4 * 1048576, `live memory moved by ${(s / 1048576).toFixed(1)} MB after warm-up: ${text}`);
});
