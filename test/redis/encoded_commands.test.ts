// EncodedBatch against Debian's real redis-server: commands we encode ourselves, any bytes in keys
// and values, reach Redis as ioredis's own commands would (read back through ioredis's usual
// commands), every reply goes to its own command in order, a client that is down tells each
// command's sink, a connection lost with a batch in flight fails that batch and pairs no late
// reply with the next batch's commands, and a cluster's masters each take their part.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Redis, type Cluster } from 'ioredis';
import { mastersOf } from '../../src/redis/cluster_masters';
import { EncodedBatch, type ReplySink } from '../../src/redis/encoded_commands';
import { RedisConnection } from '../../src/redis/redis_connection';
import { captureLog } from '../support/log_capture';
import { startRedis, startRedisCluster } from '../support/redis';
import { waitUntil } from '../support/wait_until';

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

test('EncodedBatch fails the batch in flight when the connection is lost, and the next batch on the new connection gets its own replies', async (t) => {
  const redis = await startRedis(t);
  const { log } = captureLog();
  const connection = new RedisConnection([redis.unixUrl], { requestTimeoutMs: 5000, batched: true, log });
  t.after(() => connection.close());
  assert.ok(await connection.waitReady(5000));
  const clientOf = (): Redis => connection.sendTogether((c) => c as Redis);
  const id = await clientOf().client('ID');
  await redis.cli(['set', 'k', 'v']);
  // BLPOP holds the batch in Redis (the GET and EXISTS behind it wait for it) until the kill.
  const inFlight = sendAll(clientOf(), [['blpop', ['list', '10']], ['get', [Buffer.from('k')]], ['exists', [Buffer.from('k')]]]);
  await waitUntil(async () => ((await redis.cli(['client', 'list'])).includes('cmd=blpop') ? true : undefined), 5000, () => 'the BLPOP never reached redis');
  await redis.cli(['client', 'kill', 'id', String(id)]);
  const lost = await inFlight;
  assert.deepEqual(lost.map((r) => r.index), [0, 1, 2]);
  for (const r of lost) assert.ok(r.value instanceof Error, `in flight at the loss: ${String(r.value)}`);
  await waitUntil(() => (clientOf().status === 'ready' ? true : undefined), 5000, () => `the connection is ${clientOf().status}`);
  // The element a BLPOP still waiting would take: no such reply may reach the next batch.
  await redis.cli(['rpush', 'list', 'late']);
  const next = await sendAll(clientOf(), [['get', [Buffer.from('k')]], ['llen', [Buffer.from('list')]], ['exists', [Buffer.from('nothing')]]]);
  assert.deepEqual(next.map((r) => r.value), [Buffer.from('v'), 1, 0]);
});

test('EncodedBatch parts sent to the masters that own their keys get every reply of a cluster in order', async (t) => {
  const cluster = await startRedisCluster(t);
  const { log } = captureLog();
  const connection = new RedisConnection(cluster.urls.slice(0, 3), { requestTimeoutMs: 5000, batched: true, log });
  t.after(() => connection.close());
  assert.ok(await connection.waitReady(10_000));
  const client = (): Cluster => connection.sendTogether((c) => c as Cluster);
  // Every master connected (the client connects to a master on its first command there).
  await Promise.all(client().nodes('master').map((node) => node.ping()));
  let round = 0;
  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(fc.uint8Array({ minLength: 1, maxLength: 24 }), { minLength: 1, maxLength: 20, selector: (k) => Buffer.from(k).toString('hex') }), async (ids) => {
      const keys = ids.map((id) => Buffer.concat([Buffer.from(`c${round++}:`), id]));
      const masterOf = mastersOf(client());
      const parts = new Map<Redis, { commands: [string, Buffer[]][]; expected: unknown[] }>();
      for (const [i, key] of keys.entries()) {
        const master = masterOf(key);
        assert.ok(master !== undefined, 'every slot has a connected master');
        const part = parts.get(master) ?? { commands: [], expected: [] };
        part.commands.push(['set', [key, Buffer.from(String(i))]], ['get', [key]], ['del', [key]], ['exists', [key]]);
        part.expected.push(Buffer.from('OK'), Buffer.from(String(i)), 1, 0);
        parts.set(master, part);
      }
      for (const [master, { commands, expected }] of parts) {
        const replies = await sendAll(master, commands);
        assert.deepEqual(replies.map((r) => r.index), commands.map((_, i) => i), 'replies in order');
        // A MOVED error here would mean a key went to a master that does not own it.
        assert.deepEqual(replies.map((r) => r.value), expected);
      }
    }),
    { numRuns: 30 },
  );
});
