// The model-based property test of the session store (test/cache/stores/reference_store.ts, the
// C server's semantics) driven against dc_server on Redis, standalone and a Redis Cluster, through
// the wire: random ADD/GET/HAVE/REMOVE sequences sent in pipelined batches, every answer compared
// with the model's, in order.
//
// Time is Redis's own and cannot be driven from here, so expiry is not what this test checks
// (the golden vectors and the in-memory contract test do): every ADD carries an integer timeout
// between 60 s and 600 s, far from any boundary a run could reach, and the model's clock stands
// still. Eviction is Redis's maxmemory policy, so the model has no count limit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Program, dialOf } from './cache_harness';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/constants';
import { ReferenceStore } from '../cache/stores/reference_store';
import { startRedis, startRedisCluster } from '../support/redis';
import type { AfterHook } from '../support/temp_dir';

type Op =
  | { readonly kind: 'add'; readonly id: number; readonly size: number; readonly fill: number; readonly timeoutMs: number }
  | { readonly kind: 'get' | 'remove' | 'have'; readonly id: number };

const id = fc.integer({ min: 0, max: 99 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('add' as const), id, size: fc.integer({ min: 1, max: 300 }), fill: fc.integer({ min: 0, max: 255 }), timeoutMs: fc.integer({ min: 60_000, max: 600_000 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('get' as const, 'remove' as const, 'have' as const), id }) },
);
/** Operations and where the batches (sent pipelined, without waiting) end. */
const run = fc.record({ ops: fc.array(op, { minLength: 1, maxLength: 300 }), batch: fc.integer({ min: 1, max: 40 }) });

/** Binary ids, as TLS session ids are: bytes that are not UTF-8 (a cluster client that read the
 * key as UTF-8 to route it put keys of different nodes in one pipeline and lost the batch). */
function keyOf(n: number): Buffer {
  return Buffer.concat([Buffer.from([0xc3, 0x28, 0x80 | n, 0xfe, 0xff]), Buffer.from(`model-${n}`)]);
}

/** What the model answers, in the client's terms. */
function modelAnswer(model: ReferenceStore, o: Op): unknown {
  const key = keyOf(o.id);
  switch (o.kind) {
    case 'add':
      return model.add(0, key, Buffer.alloc(o.size, o.fill), o.timeoutMs) ? Status.OK : Status.ADD_MATCHING_SESSION;
    case 'get':
      return model.get(0, key) ?? null;
    case 'remove':
      return model.remove(0, key);
    case 'have':
      return model.have(0, key);
  }
}

function send(client: CacheClient, o: Op): Promise<unknown> {
  const key = keyOf(o.id);
  switch (o.kind) {
    case 'add':
      return client.add(key, Buffer.alloc(o.size, o.fill), o.timeoutMs);
    case 'get':
      return client.get(key);
    case 'remove':
      return client.remove(key);
    case 'have':
      return client.have(key);
  }
}

async function checkAgainstModel(t: AfterHook, redisArgs: readonly string[], flush: () => Promise<void>): Promise<void> {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', ...redisArgs]);
  t.after(() => server.stop());
  const [address] = await server.listening();
  const target = dialOf(address!) as { host: string; port: number };
  let batches = 0;
  await fc.assert(
    fc.asyncProperty(run, async ({ ops, batch }) => {
      await flush();
      const model = new ReferenceStore(0);
      const client = await CacheClient.connect({ host: target.host, port: target.port });
      try {
        for (let i = 0; i < ops.length; i += batch) {
          const chunk = ops.slice(i, i + batch);
          const got = await Promise.all(chunk.map((o) => send(client, o)));
          const want = chunk.map((o) => modelAnswer(model, o));
          assert.deepEqual(got, want, `batch at op ${i}: ${JSON.stringify(chunk)}`);
          batches++;
        }
      } finally {
        client.destroy();
      }
    }),
    { numRuns: 25 },
  );
  assert.ok(batches > 25);
  assert.equal(server.running, true);
}

test('dc_server on a standalone redis answers pipelined random operations as the reference model does', async (t) => {
  const redis = await startRedis(t);
  await checkAgainstModel(t, ['-redis', redis.unixUrl], async () => void (await redis.cli(['flushall'])));
});

test('dc_server on a redis cluster answers pipelined random operations as the reference model does', async (t) => {
  const cluster = await startRedisCluster(t);
  await checkAgainstModel(t, cluster.urls.slice(0, 3).flatMap((u) => ['-redis', u]), async () => {
    for (const master of await cluster.masters()) await cluster.cli(master, ['flushall']);
  });
});
