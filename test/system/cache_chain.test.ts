// The whole distcache chain as a deployment has it: the client library -> dc_client (per-host
// proxy) -> dc_snoop (debug tap) -> dc_server, every hop a real program.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { Program } from './cache_harness';
import { tempDir } from '../support/temp_dir';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/constants';
import { receiveQueue } from '../support/receive_queue';
import { waitUntil } from '../support/wait_until';

/**
 * Starts dc_server <- dc_snoop <- dc_client on unix sockets in a fresh directory, one after the
 * other (each hop must be listening before the next one dials it), waits for dc_client's upstream
 * connection, and stops all three after the test (continuing any the test left stopped).
 */
async function startChain(t: TestContext, prefix: string, serverArgs: readonly string[] = []): Promise<{ server: Program; snoop: Program; proxy: Program; proxySock: string }> {
  const dir = tempDir(t, prefix);
  const sock = (name: string): string => path.join(dir, `${name}.sock`);
  const started: Program[] = [];
  t.after(async () => {
    for (const p of started) if (p.running) process.kill(p.pid, 'SIGCONT');
    await Promise.all(started.map((p) => p.stop()));
  });
  const start = async (p: Program): Promise<Program> => {
    started.push(p);
    await p.listening();
    return p;
  };
  const server = await start(new Program('dc_server', ['-listen', `UNIX:${sock('server')}`, ...serverArgs]));
  const snoop = await start(new Program('dc_snoop', ['-listen', `UNIX:${sock('snoop')}`, '-connect', `UNIX:${sock('server')}`]));
  const proxy = await start(new Program('dc_client', ['-listen', `UNIX:${sock('proxy')}`, '-server', `UNIX:${sock('snoop')}`, '-loglevel', 'info']));
  await proxy.waitUntil('the upstream connection', () => /upstream connected/.test(proxy.stderr));
  return { server, snoop, proxy, proxySock: sock('proxy') };
}

test('the client library works through dc_client, dc_snoop and dc_server with pipelining and multi-frame data', async (t) => {
  const { snoop, proxySock } = await startChain(t, 'dc-chain-', ['-sessions', '1000']);

  const clients = await Promise.all(Array.from({ length: 4 }, () => CacheClient.connect({ path: proxySock })));
  t.after(() => clients.forEach((c) => c.destroy()));
  const big = crypto.randomBytes(30_000);
  assert.equal(await clients[0]!.add('big-session', big, 60_000), Status.OK);
  // 4 clients x 50 pipelined ADDs, then every one read back through another client.
  await Promise.all(
    clients.map(async (c, i) => {
      const adds = Array.from({ length: 50 }, (_, j) => c.add(`s-${i}-${j}`, `data-${i}-${j}`, 60_000));
      assert.deepEqual(await Promise.all(adds), Array(50).fill(Status.OK));
    }),
  );
  await Promise.all(
    clients.map(async (c, i) => {
      const other = (i + 1) % clients.length;
      const gets = Array.from({ length: 50 }, (_, j) => c.get(`s-${other}-${j}`));
      const got = await Promise.all(gets);
      got.forEach((g, j) => assert.equal(g?.toString(), `data-${other}-${j}`));
    }),
  );
  assert.ok((await clients[3]!.get('big-session'))!.equals(big));
  assert.equal(await clients[1]!.add('big-session', 'again', 60_000), Status.ADD_MATCHING_SESSION);
  assert.equal(await clients[2]!.remove('big-session'), true);
  assert.equal(await clients[2]!.have('big-session'), false);
  assert.equal(await clients[2]!.get('never-added'), null);

  // dc_snoop saw the proxy's own uids (1, 2, ...), not the applications'.
  await snoop.waitUntil('the last frames', () => /op=HAVE .*status=0x01\(NOTOK\)/.test(snoop.stdout));
  assert.match(snoop.stdout, /c2s uid=0x00000001 op=ADD frame=1 complete=0 len=2048 timeout=60000 id_len=11 id=6269672d73657373696f6e\(11\)/);
  assert.match(snoop.stdout, /c2s uid=0x00000001 op=ADD frame=15 complete=1 len=1347/);
  assert.match(snoop.stdout, /s2c uid=0x[0-9a-f]{8} op=ADD frame=1 complete=1 len=1 status=0x65\(ADD_MATCHING_SESSION\)/);
  assert.equal((snoop.stdout.match(/ corrupt /g) ?? []).length, 0);
});

test('the client library sees unavailable (0x02, then empty answers) when dc_client loses dc_server mid-request', async (t) => {
  const dir = tempDir(t, 'dc-chain-kill-');
  const serverSock = path.join(dir, 'server.sock');
  const proxySock = path.join(dir, 'proxy.sock');
  const server = new Program('dc_server', ['-listen', `UNIX:${serverSock}`]);
  let proxy: Program | undefined;
  t.after(async () => {
    if (server.running) process.kill(server.pid, 'SIGCONT');
    await Promise.all([proxy?.stop(), server.stop()]);
  });
  await server.listening();
  proxy = new Program('dc_client', ['-listen', `UNIX:${proxySock}`, '-server', `UNIX:${serverSock}`, '-loglevel', 'info']);
  await proxy.listening();
  await proxy.waitUntil('the upstream connection', () => /upstream connected/.test(proxy.stderr));
  const client = await CacheClient.connect({ path: proxySock });
  t.after(() => client.destroy());
  assert.equal(await client.add('k', 'v', 60_000), Status.OK);
  process.kill(server.pid, 'SIGSTOP');
  // HAVE, not GET: for GET the library cannot tell 0x02 from a stored one-byte value 0x02.
  const pending = client.have('k');
  await waitUntil(() => (receiveQueue({ path: serverSock }) > 0 ? true : undefined), 10_000, () => 'the HAVE never reached the frozen server');
  process.kill(server.pid, 'SIGKILL');
  await assert.rejects(pending, (e: Error & { code?: string }) => e.code === 'cache-unavailable');
  // While no server is reachable, dc_client answers at once with an empty payload.
  await assert.rejects(client.get('k'), (e: Error & { code?: string }) => e.code === 'cache-unavailable' && /empty answer/.test(e.message));
  assert.equal(proxy.running, true);
  assert.match(proxy.stderr, /upstream lost .*outstanding=1/);
});

test('dc_client keeps at most 512 requests in flight upstream and queues the rest until answers come back', async (t) => {
  const { server, snoop, proxySock } = await startChain(t, 'dc-chain-512-');
  const clients = await Promise.all(Array.from({ length: 20 }, () => CacheClient.connect({ path: proxySock })));
  t.after(() => clients.forEach((c) => c.destroy()));
  // Freeze the server: nothing is answered, so what dc_snoop sees pass is what is in flight.
  process.kill(server.pid, 'SIGSTOP');
  const answers = clients.flatMap((c, i) => Array.from({ length: 30 }, (_, j) => c.have(`k-${i}-${j}`)));
  const requestsSeen = (): number => (snoop.stdout.match(/ c2s uid=/g) ?? []).length;
  await snoop.waitUntil('512 requests upstream', () => requestsSeen() >= 512);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(requestsSeen(), 512, 'no more than 512 in flight');
  process.kill(server.pid, 'SIGCONT');
  assert.deepEqual(await Promise.all(answers), Array(600).fill(false));
  assert.equal(requestsSeen(), 600);
});
