// dc_server on a standalone Redis through the native link (src/redis/pumped_link, redis_link.c):
// commands encoded and replies parsed in C on the socket pump. Many clients pipelining get their
// answers in request order, every request through the link; a connection lost with requests in
// flight answers each of them with the failure status (none with another's reply) and the link
// comes back on a new connection; a request Redis refuses fails alone, its neighbours keep their
// own replies. A real redis-server on a unix socket.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createRedisEngine } from '../../src/cache/redis_engine';
import { encodeAddPayload, Operation, Status } from '../../src/cache/wire/index';
import { RedisConnection } from '../../src/redis/redis_connection';
import { startRedis, startRedisCluster, type RedisServer } from '../support/redis';
import { startCacheServer, type TestServer } from './cache_server';
import { connectPeer, request, Responses, until } from './pumped_peer';

const PREFIX = 'native:';

interface Setup {
  readonly server: TestServer;
  readonly redis: RedisServer;
  readonly connection: RedisConnection;
}

/** dc_server on a fresh redis-server, once its native link is up. */
async function startOnLink(t: TestContext, timeoutMs = 5000): Promise<Setup> {
  const redis = await startRedis(t);
  let connection!: RedisConnection;
  const server = await startCacheServer({
    unix: true,
    engine: (log) => {
      connection = new RedisConnection([redis.unixUrl], { requestTimeoutMs: timeoutMs, batched: true, log });
      return createRedisEngine({ redis: connection, requestTimeoutMs: timeoutMs, prefix: PREFIX, log });
    },
  });
  t.after(async () => {
    await server.close();
    await server.engine.close();
  });
  await until(() => connection.link !== undefined);
  return { server, redis, connection };
}

function add(uid: number, id: string, data: Buffer, timeoutMs = 60_000): Buffer {
  return request(uid, Operation.ADD, encodeAddPayload({ timeoutMs, id: Buffer.from(id), data }));
}

test('redis native link answers sixteen pipelining clients in request order, every request on the link', async (t) => {
  const { server, connection } = await startOnLink(t);
  const clients = 16;
  const sessions = 40;
  const sockets = await Promise.all(Array.from({ length: clients }, () => connectPeer(server.target as net.NetConnectOpts)));
  t.after(() => sockets.forEach((s) => s.destroy()));
  const responses = sockets.map((s) => new Responses(s));
  const repliesBefore = connection.linkReplies;
  sockets.forEach((socket, c) => {
    const parts: Buffer[] = [];
    for (let s = 0; s < sessions; s++) {
      const id = `c${c}-s${s}`;
      parts.push(add(6 * s, id, Buffer.alloc(50 + c + s, c)), request(6 * s + 1, Operation.GET, Buffer.from(id)), request(6 * s + 2, Operation.HAVE, Buffer.from(id)));
      parts.push(add(6 * s + 3, id, Buffer.alloc(1)), request(6 * s + 4, Operation.REMOVE, Buffer.from(id)), request(6 * s + 5, Operation.GET, Buffer.from(id)));
    }
    socket.write(Buffer.concat(parts));
  });
  const got = await Promise.all(responses.map((r) => r.take(6 * sessions)));
  got.forEach((answers, c) => {
    answers.forEach((r, k) => {
      assert.equal(r.uid, k, `client ${c}: answer ${k} in request order`);
      const s = Math.floor(k / 6);
      const expected = [[1, Status.OK], [50 + c + s, c], [1, Status.OK], [1, Status.ADD_MATCHING_SESSION], [1, Status.OK], [1, Status.NOTOK]][k % 6]!;
      assert.deepEqual([r.length, r.status], expected, `client ${c}: answer ${k}`);
    });
  });
  assert.equal(connection.linkReplies - repliesBefore, clients * sessions * 6, 'every request went through the native link');
});

test('redis native link answers every request in flight with the failure status when the connection is lost, then serves on a new one', async (t) => {
  // A deadline far beyond the test's own: the failure answers can only come from the lost connection.
  const { server, redis, connection } = await startOnLink(t, 3_600_000);
  const client = await connectPeer(server.target as net.NetConnectOpts);
  t.after(() => client.destroy());
  const answers = new Responses(client);
  client.write(add(0, 'kept', Buffer.from('before')));
  assert.deepEqual((await answers.take(1)).map((r) => r.status), [Status.OK]);
  // Redis stops answering (SIGSTOP: the requests reach its socket and stay there), then dies.
  process.kill(redis.pid, 'SIGSTOP');
  const count = 200;
  const parts: Buffer[] = [];
  for (let uid = 1; uid <= count; uid++) parts.push(uid % 2 === 0 ? request(uid, Operation.GET, Buffer.from('kept')) : add(uid, `lost-${uid}`, Buffer.from('x')));
  client.write(Buffer.concat(parts));
  await until(() => (connection.link?.inFlight ?? 0) === count);
  await redis.kill();
  const failed = await answers.take(count);
  failed.forEach((r, k) => assert.deepEqual([r.uid, r.length, r.status], [k + 1, 1, Status.NOTOK], `request ${k + 1} answered with the failure status`));
  assert.ok(server.lines.some((line) => /Redis down: Redis connection lost/.test(line)), server.lines.join('\n'));
  // A new redis-server on the same socket: ioredis connects again, and the link takes it.
  await redis.restart();
  await until(() => connection.link !== undefined);
  const repliesBefore = connection.linkReplies;
  client.write(Buffer.concat([add(1000, 'after', Buffer.from('again')), request(1001, Operation.GET, Buffer.from('after'))]));
  assert.deepEqual((await answers.take(2)).map((r) => [r.uid, r.length, r.status]), [[1000, 1, Status.OK], [1001, 5, 'a'.charCodeAt(0)]]);
  assert.equal(connection.linkReplies - repliesBefore, 2);
});

test('redis native link fails only the request redis refuses, its neighbours keeping their own replies', async (t) => {
  const { server, redis } = await startOnLink(t);
  await redis.cli(['HSET', `${PREFIX}hash`, 'f', 'v']);
  const client = await connectPeer(server.target as net.NetConnectOpts);
  t.after(() => client.destroy());
  const answers = new Responses(client);
  // GET of a hash is refused (WRONGTYPE); each GET stands alone between ADDs, so it is not an MGET.
  client.write(Buffer.concat([
    add(0, 'a', Buffer.from('AAAA')),
    request(1, Operation.GET, Buffer.from('hash')),
    add(2, 'b', Buffer.from('BBBBBB')),
    request(3, Operation.GET, Buffer.from('a')),
    add(4, 'c', Buffer.from('C')),
    request(5, Operation.GET, Buffer.from('b')),
  ]));
  const got = await answers.take(6);
  assert.deepEqual(got.map((r) => [r.uid, r.length, r.status]), [
    [0, 1, Status.OK],
    [1, 1, Status.NOTOK],
    [2, 1, Status.OK],
    [3, 4, 'A'.charCodeAt(0)],
    [4, 1, Status.OK],
    [5, 6, 'B'.charCodeAt(0)],
  ]);
  assert.ok(server.lines.some((line) => /WRONGTYPE/.test(line)), 'the refusal is logged');
});

test('redis native links of a cluster take a request its master sends elsewhere back to the cluster client, in order', async (t) => {
  const cluster = await startRedisCluster(t);
  let connection!: RedisConnection;
  const server = await startCacheServer({
    unix: true,
    engine: (log) => {
      connection = new RedisConnection(cluster.urls.slice(0, 3), { requestTimeoutMs: 5000, batched: true, log });
      return createRedisEngine({ redis: connection, requestTimeoutMs: 5000, prefix: PREFIX, log });
    },
  });
  t.after(async () => {
    await server.close();
    await server.engine.close();
  });
  const client = await connectPeer(server.target as net.NetConnectOpts);
  t.after(() => client.destroy());
  const answers = new Responses(client);
  // Until each master's link is up, requests go through ioredis: wait until an ADD of every
  // session was answered on a link.
  const ids = Array.from({ length: 32 }, (_, i) => `s${i}`);
  let uid = 0;
  for (let tries = 0; ; tries++) {
    const before = connection.linkReplies;
    client.write(Buffer.concat(ids.map((id) => add(uid++, id, Buffer.from(`data of ${id}`)))));
    await answers.take(ids.length);
    if (connection.linkReplies - before === ids.length) break;
    assert.ok(tries < 200, 'the masters\' links never came up');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const masters = await Promise.all(ids.map((id) => cluster.masterOf(`${PREFIX}${id}`)));
  const movedIndex = ids.findIndex((_, i) => i > 0 && masters[i] === masters[0]);
  const moved = ids[movedIndex]!;
  const slot = Number((await cluster.cli(masters[0]!, ['cluster', 'keyslot', `${PREFIX}${moved}`])).trim());
  const to = (await cluster.masters()).find((m) => m !== masters[0])!;
  await cluster.moveSlot(slot, masters[0]!, to);
  // The slot map still names the old master, whose link gets MOVED for every request of the slot.
  const start = uid;
  const before = connection.linkReplies;
  client.write(Buffer.concat([
    request(uid++, Operation.GET, Buffer.from(ids[0]!)),
    request(uid++, Operation.GET, Buffer.from(moved)),
    request(uid++, Operation.HAVE, Buffer.from(moved)),
    add(uid++, moved, Buffer.from('other')),
    request(uid++, Operation.REMOVE, Buffer.from(moved)),
    add(uid++, moved, Buffer.from('again!')),
    request(uid++, Operation.GET, Buffer.from(moved)),
  ]));
  const got = await answers.take(7);
  assert.deepEqual(got.map((r) => [r.uid - start, r.length, r.status]), [
    [0, `data of ${ids[0]}`.length, 'd'.charCodeAt(0)],
    [1, `data of ${moved}`.length, 'd'.charCodeAt(0)],
    [2, 1, Status.OK],
    [3, 1, Status.ADD_MATCHING_SESSION],
    [4, 1, Status.OK],
    [5, 1, Status.OK],
    [6, 6, 'a'.charCodeAt(0)],
  ]);
  assert.ok(connection.linkReplies - before >= 2, 'the requests went on the masters\' links');
  assert.equal(await cluster.cli(to, ['get', `${PREFIX}${moved}`]), 'again!\n');
});
