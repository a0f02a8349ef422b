// dc_server on Redis over the native socket pump: the answers of a Redis batch come in outside the
// pump's callback, every client's at once (one reply read settles them all), and must leave in
// request order on each connection, together (one call into the addon for many answers, not one
// each), and a client that goes away while its answers are still at Redis costs only itself.
// A real redis-server on a unix socket.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pumpedSockets, pumpSendCalls } from '../../src/activation/socket_pump';
import { createRedisEngine } from '../../src/cache/redis_engine';
import { encodeAddPayload, Operation, Status } from '../../src/cache/wire/index';
import { RedisConnection } from '../../src/redis/redis_connection';
import { startRedis } from '../support/redis';
import { startCacheServer, type TestServer } from './cache_server';
import { connectPeer, request, Responses, until } from './pumped_peer';

const CLIENTS = 16;
const SESSIONS_PER_CLIENT = 25;

/** dc_server on a fresh redis-server, once the engine's Redis connection answers. */
async function startRedisServer(t: TestContext, unix: boolean): Promise<TestServer> {
  const redis = await startRedis(t);
  const server = await startCacheServer({
    unix,
    engine: (log) => {
      const connection = new RedisConnection([redis.unixUrl], { requestTimeoutMs: 5000, batched: true, log });
      return createRedisEngine({ redis: connection, requestTimeoutMs: 5000, prefix: 'pumped:', log });
    },
  });
  t.after(async () => {
    await server.close();
    await server.engine.close();
  });
  // Until the connection is up, requests are answered as in an outage (0x01).
  const probe = await connectPeer(server.target as net.NetConnectOpts);
  const answers = new Responses(probe);
  for (let uid = 0; ; uid++) {
    probe.write(request(uid, Operation.ADD, encodeAddPayload({ timeoutMs: 1000, id: Buffer.from(`probe-${uid}`), data: Buffer.alloc(1) })));
    const [added] = await answers.take(1);
    if (added!.status === Status.OK) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  probe.destroy();
  return server;
}

/** Client `c`'s pipeline: per session ADD, GET, HAVE, REMOVE, then a GET that misses. */
function pipelineOf(c: number): Buffer {
  const parts: Buffer[] = [];
  for (let s = 0; s < SESSIONS_PER_CLIENT; s++) {
    const id = Buffer.from(`client-${c}-session-${s}`);
    const uid = 5 * s;
    parts.push(request(uid, Operation.ADD, encodeAddPayload({ timeoutMs: 60_000, id, data: Buffer.alloc(100 + c, c) })));
    parts.push(request(uid + 1, Operation.GET, id));
    parts.push(request(uid + 2, Operation.HAVE, id));
    parts.push(request(uid + 3, Operation.REMOVE, id));
    parts.push(request(uid + 4, Operation.GET, id));
  }
  return Buffer.concat(parts);
}

test('redis engine on the pump answers many clients in request order, a batch in few sends, when they pipeline at once', async (t) => {
  const server = await startRedisServer(t, true);
  const sockets = await Promise.all(Array.from({ length: CLIENTS }, () => connectPeer(server.target as net.NetConnectOpts)));
  t.after(() => sockets.forEach((s) => s.destroy()));
  const responses = sockets.map((s) => new Responses(s));
  const sendsBefore = pumpSendCalls();
  sockets.forEach((s, c) => s.write(pipelineOf(c)));
  const got = await Promise.all(responses.map((r) => r.take(5 * SESSIONS_PER_CLIENT)));
  const sends = pumpSendCalls() - sendsBefore;
  assert.equal(pumpedSockets() >= CLIENTS, true, 'the connections are served by the native pump');
  got.forEach((answers, c) => {
    answers.forEach((r, k) => {
      assert.equal(r.uid, k, `client ${c} answer ${k} in request order`);
      const step = k % 5;
      if (step === 1) assert.equal(r.length, 100 + c, `client ${c} GET ${k} hits its own session`);
      else if (step === 4) assert.deepEqual([r.length, r.status], [1, Status.NOTOK], `client ${c} GET ${k} misses after REMOVE`);
      else assert.deepEqual([r.length, r.status], [1, Status.OK], `client ${c} answer ${k}`);
    });
  });
  const answers = CLIENTS * 5 * SESSIONS_PER_CLIENT;
  // One call per answer was the old way (each answer sent as it came in).
  assert.ok(sends * 4 < answers, `${answers} answers left in ${sends} calls into the addon`);
});

test('redis engine on the pump serves the others when a client goes away while its answers are at Redis', async (t) => {
  const server = await startRedisServer(t, false);
  const stay = await connectPeer(server.target as net.NetConnectOpts);
  t.after(() => stay.destroy());
  const stayAnswers = new Responses(stay);
  await until(() => server.engine.stats.connections === 1); // the probe gone, `stay` served
  const before = 1;
  for (let round = 0; round < 20; round++) {
    const leaver = await connectPeer(server.target as net.NetConnectOpts);
    await until(() => server.engine.stats.connections === before + 1);
    // A pipeline, then gone (a TCP reset: its answers have nowhere to go).
    leaver.write(pipelineOf(round));
    stay.write(request(round, Operation.HAVE, Buffer.from('absent')));
    leaver.resetAndDestroy();
    const [answer] = await stayAnswers.take(1);
    assert.deepEqual([answer!.uid, answer!.status], [round, Status.NOTOK]);
    await until(() => server.engine.stats.connections === before);
  }
  assert.deepEqual(server.lines.filter((line) => /answer failed|internal error/.test(line)), []);
});
