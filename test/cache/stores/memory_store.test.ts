import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, ENTRY_OVERHEAD_BYTES, MIN_MAX_BYTES, type MemoryStoreOptions } from '../../../src/cache/stores/memory_store';
import { SlabStore, SLOT_OVERHEAD_BYTES } from '../../../src/cache/stores/slab_store';
import { SlabArena } from '../../../src/cache/stores/slab_arena';
import { seededRandom } from '../random';

const id = (s: string): Buffer => Buffer.from(s);

function fill(store: MemoryStore | SlabStore, n: number, now = 0): void {
  for (let i = 0; i < n; i++) assert.equal(store.add(now, id(`s${i}`), Buffer.from([i & 0xff]), 100_000 + i * 1000), true);
}

// Both in-memory stores must pass every test here: the compact one is dc_server's default, the
// Map-based one the readable statement of the same semantics.
const STORES = [
  { name: 'MemoryStore', make: (o: MemoryStoreOptions) => new MemoryStore(o), costOf: (idLength: number, dataLength: number) => idLength + dataLength + ENTRY_OVERHEAD_BYTES },
  { name: 'SlabStore', make: (o: MemoryStoreOptions) => new SlabStore(o), costOf: (idLength: number, dataLength: number) => SlabArena.blockSize(4 + idLength + dataLength) + SLOT_OVERHEAD_BYTES },
] as const;

for (const { name, make, costOf } of STORES) {
  for (const [capacity, batch] of [[64, 2], [512, 17], [60000, 2000]] as const) {
    test(`${name} evicts ${batch} soonest-expiring sessions when an ADD meets a full cache of ${capacity}`, () => {
      const store = make({ capacity });
      assert.equal(store.evictionBatch, batch);
      fill(store, capacity);
      assert.equal(store.size(0), capacity);
      assert.equal(store.add(0, id('new'), Buffer.from('x'), 50), true);
      assert.equal(store.size(0), capacity - batch + 1);
      assert.equal(store.stats.evicted, batch);
      for (let i = 0; i < batch; i++) assert.equal(store.have(0, id(`s${i}`)), false, `s${i} evicted`);
      assert.equal(store.have(0, id(`s${batch}`)), true);
      assert.equal(store.have(0, id('new')), true);
    });
  }

  test(`${name} evicts the session added first when expiries tie`, () => {
    const store = make({ capacity: 64 });
    for (let i = 0; i < 64; i++) store.add(1000, id(`t${i}`), Buffer.from('d'), 5000);
    store.add(1000, id('late'), Buffer.from('d'), 1);
    assert.deepEqual([0, 1, 2].map((i) => store.have(1000, id(`t${i}`))), [false, false, true]);
    // The newcomer expires soonest of all, so the next eviction takes it first, then t2.
    store.add(1000, id('x1'), Buffer.from('d'), 9000);
    assert.equal(store.have(1000, id('late')), true);
    store.add(1000, id('x2'), Buffer.from('d'), 9000);
    assert.equal(store.have(1000, id('late')), false);
    assert.equal(store.have(1000, id('t2')), false);
    assert.equal(store.have(1000, id('t3')), true);
  });

  test(`${name} keeps a session at now == add + timeout and drops it one ms later`, () => {
    const store = make({ capacity: 64 });
    store.add(1000, id('a'), Buffer.from('A'), 500);
    assert.deepEqual(store.get(1500, id('a')), Buffer.from('A'));
    assert.equal(store.have(1500, id('a')), true);
    assert.equal(store.get(1501, id('a')), undefined);
    assert.equal(store.stats.expired, 1);
  });

  test(`${name} does not extend a session when it is read`, () => {
    const store = make({ capacity: 64 });
    store.add(0, id('a'), Buffer.from('A'), 100);
    for (let t = 0; t <= 100; t += 10) assert.equal(store.have(t, id('a')), true);
    assert.equal(store.have(100.001, id('a')), false);
  });

  test(`${name} accepts timeout 0 and drops the session at any later look`, () => {
    const store = make({ capacity: 64 });
    assert.equal(store.add(5, id('z'), Buffer.from('Z'), 0), true);
    assert.equal(store.have(5.001, id('z')), false);
  });

  test(`${name} keeps the old session without refreshing it when an unexpired id is added again`, () => {
    const store = make({ capacity: 64 });
    assert.equal(store.add(0, id('a'), Buffer.from('old'), 100), true);
    assert.equal(store.add(50, id('a'), Buffer.from('new'), 100_000), false);
    assert.deepEqual(store.get(100, id('a')), Buffer.from('old'));
    assert.equal(store.have(101, id('a')), false);
    // Once expired, the same id is welcome again.
    assert.equal(store.add(101, id('a'), Buffer.from('new'), 100), true);
    assert.deepEqual(store.get(101, id('a')), Buffer.from('new'));
  });

  test(`${name} compares ids as exact bytes when they differ only above 0x7f`, () => {
    const store = make({ capacity: 64 });
    store.add(0, Buffer.from([0xc3, 0xa9]), Buffer.from('1'), 1000);
    store.add(0, Buffer.from([0xe9]), Buffer.from('2'), 1000);
    store.add(0, Buffer.from([0xff, 0xfe]), Buffer.from('3'), 1000);
    assert.deepEqual(store.get(0, Buffer.from([0xc3, 0xa9])), Buffer.from('1'));
    assert.deepEqual(store.get(0, Buffer.from([0xe9])), Buffer.from('2'));
    assert.equal(store.get(0, Buffer.from([0xfd, 0xff])), undefined);
    assert.equal(store.remove(0, Buffer.from([0xe9])), true);
    assert.equal(store.remove(0, Buffer.from([0xe9])), false);
    assert.equal(store.size(0), 2);
  });

  test(`${name} keeps its own copy of the data when the caller reuses its buffer`, () => {
    const store = make({ capacity: 64 });
    const buf = Buffer.from('abcdef');
    store.add(0, buf.subarray(0, 2), buf.subarray(2), 1000);
    buf.fill(0);
    assert.deepEqual(store.get(0, id('ab')), Buffer.from('cdef'));
    store.get(0, id('ab'))!.fill(1);
    assert.deepEqual(store.get(0, id('ab')), Buffer.from('cdef'), 'a reader cannot change the stored session');
  });

  test(`${name} evicts soonest-expiring sessions when the byte bound is reached with no count limit`, () => {
    const cost = costOf(2, 1000);
    const store = make({ capacity: 0, maxBytes: MIN_MAX_BYTES });
    const fits = Math.floor(MIN_MAX_BYTES / cost);
    // Inserted in reverse expiry order: the last added expire first.
    for (let i = 0; i < fits; i++) assert.equal(store.add(0, id(`${i % 10}${Math.floor(i / 10)}`.padStart(2, '0').slice(0, 2)), Buffer.alloc(1000, i), 1_000_000 - i), true);
    assert.equal(store.size(0), fits);
    assert.equal(store.stats.evicted, 0);
    assert.ok(store.stats.bytes <= MIN_MAX_BYTES);
    store.add(0, id('zz'), Buffer.alloc(1000), 2_000_000);
    assert.equal(store.stats.evicted, 1);
    assert.equal(store.size(0), fits);
    assert.ok(store.stats.bytes <= MIN_MAX_BYTES);
    // The evicted one was the soonest to expire: the last of the loop.
    const last = fits - 1;
    assert.equal(store.have(0, id(`${last % 10}${Math.floor(last / 10)}`.slice(0, 2))), false);
    assert.equal(store.have(0, id('00')), true);
  });

  test(`${name} refuses capacities outside 64..10,000,000 except 0`, () => {
    for (const capacity of [1, 63, 10_000_001, 1.5, -1, NaN]) assert.throws(() => make({ capacity }), /out of range/);
    for (const capacity of [0, 64, 60000, 10_000_000]) assert.equal(make({ capacity }).capacity, capacity);
    assert.throws(() => make({ capacity: 0, maxBytes: 1000 }), /too small/);
  });

  test(`${name} frees removed, expired and evicted sessions from its byte count`, () => {
    const store = make({ capacity: 64 });
    fill(store, 64);
    store.add(0, id('extra'), Buffer.alloc(10), 1);
    store.remove(0, id('s10'));
    store.purge(1e12);
    assert.deepEqual(store.stats, { sessions: 0, bytes: 0, added: 65, expired: 62, evicted: 2, removed: 1 });
  });

  test(`${name} returns data byte for byte when it holds every byte value`, () => {
    const store = make({ capacity: 64 });
    const data = Buffer.alloc(32759);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131) & 0xff;
    store.add(0, Buffer.from([0]), data, 10);
    assert.deepEqual(store.get(0, Buffer.from([0])), data);
  });
}

test('MemoryStore work per operation stays logarithmic when it holds a million sessions', () => {
  // Counts heap steps rather than timing: a linear structure would need ~N steps per operation.
  const perOp = (n: number): number => {
    const store = new MemoryStore({ capacity: 0, maxBytes: 4 * 1024 * 1024 * 1024 });
    const rand = seededRandom(1);
    const data = Buffer.from('d');
    for (let i = 0; i < n; i++) store.add(0, id(`k${i}`), data, rand(10_000_000));
    assert.equal(store.size(0), n);
    // Steady state: remove and re-add, plus expiry purges across the whole range.
    const before = store.heapSteps;
    const ops = 20_000;
    for (let i = 0; i < ops; i++) {
      store.remove(0, id(`k${i * 7}`));
      store.add(0, id(`n${i}`), data, (i * 7919) % 10_000_000);
    }
    const steps = (store.heapSteps - before) / (2 * ops);
    return steps;
  };
  const small = perOp(10_000);
  const large = perOp(1_000_000);
  // log2(1e6)/log2(1e4) = 1.5; linear growth would be 100x.
  assert.ok(large <= small * 2 + 2, `steps per op grew from ${small} to ${large}`);
  assert.ok(large <= 2 * Math.log2(1_000_000) + 2, `${large} steps per op at N=1e6`);
});
