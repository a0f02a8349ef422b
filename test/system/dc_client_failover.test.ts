// dc_client with two real dc_server front ends (-server A -server B): applications under load
// keep being served when A is SIGKILLed (only the requests A had get the error status 0x02, the
// next ones go to B), and when a server comes back at A's address, new requests go to A again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CacheClient } from '../../src/cache/client';
import { Operation, Status } from '../../src/cache/wire/index';
import { tempDir, type AfterHook } from '../support/temp_dir';
import { Program, dialOf, libnalOf } from './cache_harness';

async function startServer(t: AfterHook, listen = 'IP:127.0.0.1:0'): Promise<{ server: Program; address: string }> {
  const server = new Program('dc_server', ['-listen', listen, '-sessions', '100000']);
  t.after(() => server.stop());
  const [address] = await server.listening();
  return { server, address: address! };
}

/** How the answers to the applications' requests went. */
interface Tally {
  ok: number;
  /** 0x02: the server that had the request died (DC_ERR_DISCONNECTED). */
  disconnected: number;
  /** Empty answer: dc_client had no server at all. */
  unavailable: number;
  /** A GET missed on B what A had acknowledged just before it died (two caches, no Redis). */
  missed: number;
  other: string[];
}

/** One application: ADD then GET of its own ids in pipelined rounds of 8, `rounds` times. */
async function application(app: CacheClient, name: string, rounds: number, tally: Tally, onRound: (round: number) => Promise<void>): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    await onRound(round);
    const ids = Array.from({ length: 8 }, (_, k) => `${name}-${round}-${k}`);
    const adds = await Promise.all(ids.map((id) => app.add(id, `data-${id}`, 600_000).catch((e: Error) => e)));
    const gets = await Promise.all(ids.map((id) => app.request(Operation.GET, Buffer.from(id))));
    adds.forEach((a) => {
      if (a === Status.OK) tally.ok++;
      else if (a === Status.DISCONNECTED) tally.disconnected++;
      else if (a instanceof Error && /empty|no server|unavailable/i.test(a.message)) tally.unavailable++;
      else tally.other.push(`ADD: ${String(a)}`);
    });
    gets.forEach((g, k) => {
      if (g.toString() === `data-${ids[k]}`) tally.ok++;
      else if (g.length === 1 && g[0] === Status.DISCONNECTED) tally.disconnected++;
      else if (g.length === 0) tally.unavailable++;
      // A GET whose ADD failed, or went to A just before it died: a miss on B is the right answer.
      else if (g.length === 1 && g[0] === Status.NOTOK && adds[k] !== Status.OK) tally.ok++;
      else if (g.length === 1 && g[0] === Status.NOTOK) tally.missed++;
      else tally.other.push(`GET ${ids[k]}: ${g.toString('hex')}`);
    });
  }
}

test('dc_client keeps applications served when its first server is SIGKILLed under load, and goes back to it later', async (t) => {
  const dir = tempDir(t, 'distkit-failover-');
  const a = await startServer(t);
  const b = await startServer(t);
  const sock = path.join(dir, 'scache');
  const proxy = new Program('dc_client', ['-listen', `UNIX:${sock}`, '-server', libnalOf(a.address), '-server', libnalOf(b.address), '-retry', '200', '-loglevel', 'info']);
  t.after(() => proxy.stop());
  await proxy.listening();
  await proxy.waitUntil('both servers connected', () => proxy.lines.filter((l) => /upstream connected/.test(l)).length === 2);
  const apps = await Promise.all(Array.from({ length: 4 }, () => CacheClient.connect({ path: sock })));
  t.after(() => apps.forEach((c) => c.destroy()));

  const ROUNDS = 300;
  const KILL_AT = 100;
  const tally: Tally = { ok: 0, disconnected: 0, unavailable: 0, missed: 0, other: [] };
  let killed: Promise<unknown> | undefined;
  await Promise.all(
    apps.map((app, i) =>
      application(app, `app${i}`, ROUNDS, tally, async (round) => {
        // The first application to reach the round kills A while the others are mid-pipeline.
        if (round === KILL_AT && killed === undefined) {
          process.kill(a.server.pid, 'SIGKILL');
          killed = a.server.exited;
        }
      }),
    ),
  );
  const total = apps.length * ROUNDS * 16;
  t.diagnostic(`${total} requests from ${apps.length} applications, A killed at round ${KILL_AT}: ${tally.ok} served, ${tally.disconnected} answered 0x02 (in flight on A), ${tally.unavailable} answered "no server", ${tally.missed} GETs missed on B what A had stored`);
  assert.deepEqual(tally.other, []);
  assert.equal(tally.unavailable, 0, 'B was connected all along: no request should find no server');
  // Each application has at most 8 requests in flight: those A had are the only ones lost.
  assert.ok(tally.disconnected <= apps.length * 8, `${tally.disconnected} requests answered 0x02`);
  // Only the round in which A died can miss on B what A stored (separate in-memory caches).
  assert.ok(tally.missed <= apps.length * 8, `${tally.missed} GETs missed`);
  assert.equal(tally.ok + tally.disconnected + tally.missed, total);
  assert.ok(proxy.lines.some((l) => new RegExp(`upstream serving server=${libnalOf(b.address)} previous=${libnalOf(a.address)}`).test(l)), proxy.lines.join('\n'));
  // Served by B after the kill: B holds the sessions of the last round.
  const direct = await CacheClient.connect(dialOf(b.address) as { host: string; port: number });
  t.after(() => direct.destroy());
  assert.deepEqual(await direct.get(`app0-${ROUNDS - 1}-0`), Buffer.from(`data-app0-${ROUNDS - 1}-0`));

  // A comes back at its address: dc_client's retry reconnects it, and new requests go to A again.
  await killed;
  const back = await startServer(t, libnalOf(a.address));
  await proxy.waitUntil('A reconnected', () => proxy.lines.filter((l) => new RegExp(`upstream connected server=${libnalOf(a.address)}`).test(l)).length === 2);
  assert.equal(await apps[0]!.add('after-failback', 'x', 600_000), Status.OK);
  const onA = await CacheClient.connect(dialOf(back.address) as { host: string; port: number });
  t.after(() => onA.destroy());
  assert.deepEqual(await onA.get('after-failback'), Buffer.from('x'));
  assert.equal(await direct.get('after-failback'), null);
});
