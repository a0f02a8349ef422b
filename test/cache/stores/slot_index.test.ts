// The compact store's id index on its own: lookups, inserts and the backward-shift delete under
// colliding hashes (the store's model test covers it only through random ids), and the block
// addresses it can hold.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ADDRESS_GRAIN, SlotIndex } from '../../../src/cache/stores/slot_index';

/** Blocks by address: the id each holds, as the store's slab would say. */
function indexOver(blocks: Map<number, number>): SlotIndex {
  return new SlotIndex({ holds: (address, id) => blocks.get(address) === id[0] });
}

test('SlotIndex finds every live slot and no removed one when hashes collide and entries are deleted in any order', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 3 })), { maxLength: 300 }), (steps) => {
      const blocks = new Map<number, number>();
      const index = indexOver(blocks);
      // id (one byte) -> [slot, hash]; few hashes, so runs are long and wrap around the table.
      const live = new Map<number, [number, number]>();
      let nextSlot = 0;
      for (const [add, id, hash] of steps) {
        if (add && !live.has(id)) {
          const slot = nextSlot++;
          blocks.set(slot * ADDRESS_GRAIN, id);
          index.insert(slot, hash * 0x10000001, slot * ADDRESS_GRAIN);
          live.set(id, [slot, hash * 0x10000001]);
        } else if (!add && live.has(id)) {
          const [slot, h] = live.get(id)!;
          index.delete(slot, h);
          live.delete(id);
        }
        for (let probe = 0; probe <= 40; probe++) {
          const entry = live.get(probe);
          const bucket = index.find(Buffer.from([probe]), entry?.[1] ?? probe * 0x10000001);
          if (entry === undefined) {
            assert.equal(bucket, -1);
          } else {
            assert.equal(index.slotAt(bucket), entry[0]);
            assert.equal(index.addressAt(bucket), entry[0] * ADDRESS_GRAIN);
          }
        }
      }
    }),
  );
});

test('SlotIndex refuses a block address it cannot hold when it is off the grain or beyond 64 GiB', () => {
  const last = ADDRESS_GRAIN * (2 ** 32 - 1);
  const index = indexOver(new Map([[last, 7]]));
  assert.throws(() => index.insert(0, 1, ADDRESS_GRAIN + 1), RangeError);
  assert.throws(() => index.insert(0, 1, ADDRESS_GRAIN * 2 ** 32), RangeError);
  index.insert(0, 1, last);
  assert.equal(index.addressAt(index.find(Buffer.from([7]), 1)), last);
});
