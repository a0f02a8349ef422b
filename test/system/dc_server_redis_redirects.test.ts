// dc_server on Redis when Redis will not run a request where dc_server sent it: out of memory
// with nothing to evict (writes refused, lookups and removals still served), and a slot moved to
// another master behind the cluster client's back (MOVED: each request followed to where its key
// lives now). Each request must get the answer of its own command, in order. Real redis-server,
// standalone and a three-master cluster; requests pipelined so that they travel together.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Program, dialOf } from './cache_harness';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/constants';
import { startRedis, startRedisCluster } from '../support/redis';
import type { AfterHook } from '../support/temp_dir';

async function clientOf(t: AfterHook, redisArgs: readonly string[]): Promise<{ server: Program; client: CacheClient }> {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', ...redisArgs]);
  t.after(() => server.stop());
  const [address] = await server.listening();
  const client = await CacheClient.connect(dialOf(address!) as { host: string; port: number });
  t.after(() => client.destroy());
  return { server, client };
}

test('dc_server on redis serves lookups and removals and fails adds when redis is out of memory with nothing to evict', async (t) => {
  const redis = await startRedis(t);
  const { server, client } = await clientOf(t, ['-redis', redis.unixUrl]);
  for (let tries = 0; (await client.add('kept', 'data', 60_000)) !== Status.OK; tries++) {
    assert.ok(tries < 100, 'dc_server never reached redis');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(await client.add('gone', 'data', 60_000), Status.OK);
  // Out of memory with nothing to evict: Redis refuses SET, and still runs GET, EXISTS and DEL.
  await redis.cli(['config', 'set', 'maxmemory-policy', 'noeviction']);
  await redis.cli(['config', 'set', 'maxmemory', '1']);
  const full = await Promise.all([client.get('kept'), client.have('kept'), client.add('new', 'x', 60_000), client.remove('gone'), client.have('gone'), client.add('kept', 'y', 60_000)]);
  assert.deepEqual(full, [Buffer.from('data'), true, Status.NOTOK, true, false, Status.NOTOK]);
  await redis.cli(['config', 'set', 'maxmemory', '0']);
  assert.deepEqual(await Promise.all([client.add('new', 'x', 60_000), client.get('new')]), [Status.OK, Buffer.from('x')]);
  assert.equal(server.running, true);
});

test('dc_server on a redis cluster answers every request in order when a slot moved to another master behind its back', async (t) => {
  const cluster = await startRedisCluster(t);
  const { server, client } = await clientOf(t, cluster.urls.slice(0, 3).flatMap((u) => ['-redis', u]));
  // Two sessions on one master in different slots; the second's slot then moves to another
  // master behind dc_server's back: its slot map still sends the second's requests to the first
  // master, which answers MOVED.
  const ids = Array.from({ length: 64 }, (_, i) => `s${i}`);
  const masters = await Promise.all(ids.map((id) => cluster.masterOf(`dc:${id}`)));
  const slotOf = async (id: string): Promise<number> => Number((await cluster.cli(masters[0]!, ['cluster', 'keyslot', `dc:${id}`])).trim());
  const first = ids[0]!;
  const movedIndex = ids.findIndex((_, i) => i > 0 && masters[i] === masters[0]);
  assert.ok(movedIndex > 0);
  const moved = ids[movedIndex]!;
  const stayed = ids.find((_, i) => masters[i] !== masters[0])!;
  assert.notEqual(await slotOf(first), await slotOf(moved));
  for (const id of [first, moved, stayed]) assert.equal(await client.add(id, `data of ${id}`, 600_000), Status.OK);
  const to = (await cluster.masters()).find((m) => m !== masters[0])!;
  await cluster.moveSlot(await slotOf(moved), masters[0]!, to);
  const answers = await Promise.all([
    client.get(first), client.get(moved), client.have(moved), client.add(moved, 'other', 600_000), client.get(stayed),
    client.remove(moved), client.have(moved), client.add(moved, 'again', 600_000), client.get(moved),
  ]);
  assert.deepEqual(answers, [
    Buffer.from(`data of ${first}`), Buffer.from(`data of ${moved}`), true, Status.ADD_MATCHING_SESSION, Buffer.from(`data of ${stayed}`),
    true, false, Status.OK, Buffer.from('again'),
  ]);
  assert.equal(await cluster.cli(to, ['get', `dc:${moved}`]), 'again\n');
  assert.equal(server.running, true);
});
