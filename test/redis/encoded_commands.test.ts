// EncodedBatch against Debian's real redis-server: commands we encode ourselves, any bytes in keys
// and values, reach Redis as ioredis's own commands would (read back through ioredis's usual
// commands), every reply goes to its own command in order, and a client that is down tells each
// command's sink.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { EncodedBatch, type ReplySink } from '../../src/redis/encoded_commands';
import { startRedis } from '../support/redis';

/** Issues `batch` on `client` and resolves with every reply (or error) in the order they came. */
function sendAll(client: Redis, commands: readonly [string, (Buffer | string)[]][]): Promise<{ index: number; value: unknown }[]> {
  return new Promise((resolve) => {
    const batch = new EncodedBatch();
    const got: { index: number; value: unknown }[] = [];
    const sinkOf = (index: number): ReplySink => ({
      reply: (value) => void (got.push({ index, value }) === commands.length && resolve(got)),
      error: (error) => void (got.push({ index, value: error }) === commands.length && resolve(got)),
    });
    commands.forEach(([name, args], i) => batch.add(name, args, sinkOf(i)));
    batch.send(client);
  });
}

test('EncodedBatch sends any bytes as keys and values, and each reply reaches its own command in order', async (t) => {
  const redis = await startRedis(t);
  const client = new Redis({ path: redis.socket });
  t.after(() => client.disconnect());
  await client.ping();
  let round = 0;
  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(fc.uint8Array({ minLength: 0, maxLength: 40 }), { minLength: 1, maxLength: 12, selector: (k) => Buffer.from(k).toString('hex') }), fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 12, maxLength: 12 }), async (ids, values) => {
      const prefix = `r${round++}:`;
      const keys = ids.map((id) => Buffer.concat([Buffer.from(prefix), id]));
      const data = keys.map((_, i) => Buffer.from(values[i]!));
      const replies = await sendAll(client, [
        ...keys.map((key, i): [string, (Buffer | string)[]] => ['set', [key, data[i]!, 'PX', '60000', 'NX']]),
        ['set', [keys[0]!, Buffer.from('second'), 'PX', '60000', 'NX']],
        ['mget', keys],
        ['exists', [keys[0]!]],
        ['del', [keys[0]!]],
        ['del', [keys[0]!]],
        ['get', [keys[0]!]],
      ]);
      assert.deepEqual(replies.map((r) => r.index), replies.map((_, i) => i), 'replies in order');
      const values_ = replies.map((r) => r.value);
      const n = keys.length;
      for (let i = 0; i < n; i++) assert.deepEqual(values_[i], Buffer.from('OK'));
      assert.equal(values_[n], null, 'a second SET NX leaves the first value');
      assert.deepEqual(values_[n + 1], data);
      assert.deepEqual(values_.slice(n + 2), [1, 1, 0, null]);
      // What Redis holds is what ioredis's own commands read back.
      for (let i = 1; i < n; i++) assert.deepEqual(await client.getBuffer(keys[i]!), data[i]);
      if (n > 1) assert.ok((await client.pttl(keys[1]!)) > 59_000);
    }),
    { numRuns: 50 },
  );
});

test('EncodedBatch tells every sink of an error reply or a client that is down, and the others their replies', async (t) => {
  const redis = await startRedis(t);
  const client = new Redis({ path: redis.socket, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  t.after(() => client.disconnect());
  client.on('error', () => undefined); // the disconnect below; each command is told
  await new Promise((resolve) => client.once('ready', resolve));
  await client.set('text', 'v');
  const replies = await sendAll(client, [['get', [Buffer.from('text')]], ['incr', [Buffer.from('text')]], ['exists', [Buffer.from('text')]]]);
  assert.deepEqual(replies[0]!.value, Buffer.from('v'));
  assert.match((replies[1]!.value as Error).message, /not an integer/);
  assert.equal(replies[2]!.value, 1);
  client.disconnect();
  const down = await sendAll(client, [['get', [Buffer.from('text')]], ['exists', [Buffer.from('text')]]]);
  assert.deepEqual(down.map((r) => r.index), [0, 1]);
  for (const r of down) assert.ok(r.value instanceof Error, String(r.value));
});
