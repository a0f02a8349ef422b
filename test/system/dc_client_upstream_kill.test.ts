// dc_client when its cache server is SIGKILLed with requests outstanding: each of them is answered
// 0x02 (DISCONNECTED), the loss is logged, requests while the server is down get the empty "no
// server" answer, and once a server listens again at the same address dc_client reconnects and
// forwards normally. The upstream is dc_server when it is built, else the engine stand-in.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheClient } from '../../src/cache/client';
import { encodeMessage, Operation, Status } from '../../src/cache/wire/index';
import { startLoadServer } from '../load/cache_load';
import { startServerProgram } from '../fuzz/server_program';
import { tempDir } from '../support/temp_dir';
import { receiveQueue } from '../support/receive_queue';
import { waitUntil } from '../support/wait_until';

const DC_CLIENT = path.join(__dirname, '..', '..', 'src', 'cli', 'dc_client.js');

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('dc_client answers 0x02 to requests outstanding when its server is SIGKILLed, then reconnects to a new one', async (t) => {
  const dir = tempDir(t, 'distkit-dcclient-kill-');
  let { program: server } = await startLoadServer(512);
  t.after(() => server.stop());
  // The new server below must come back at this same address: it binds the port the first got.
  const { port } = server.target;
  const sock = path.join(dir, 'scache');
  const proxy = await startServerProgram(['-listen', `UNIX:${sock}`, '-server', `IP:127.0.0.1:${port}`, '-retry', '200', '-loglevel', 'info'], { script: DC_CLIENT });
  t.after(() => proxy.stop());
  const app = await CacheClient.connect({ path: sock });
  t.after(() => app.destroy());
  // Connected upstream: an ADD goes through.
  await eventually('dc_client to reach its server', async () => ((await app.add('k', 'v1', 600_000)) === Status.OK ? true : undefined));

  // Freeze the server so the next requests stay outstanding upstream, then kill it.
  process.kill(server.pid, 'SIGSTOP');
  const outstanding = Array.from({ length: 5 }, (_, i) => app.request(Operation.GET, Buffer.from(`k${i}`)));
  const frozen = 5 * encodeMessage({ isResponse: false, uid: 0, operation: Operation.GET }, Buffer.from('k0')).length;
  await waitUntil(() => (receiveQueue({ port }) >= frozen ? true : undefined), 10_000, () => 'the GETs never reached the frozen server');
  process.kill(server.pid, 'SIGKILL');
  const answers = await Promise.all(outstanding);
  assert.deepEqual(answers.map((a) => a.toString('hex')), Array(5).fill('02'));
  // The log line travels through a pipe: wait for it.
  await waitUntil(() => (proxy.lines.some((l) => /upstream lost .*outstanding=5/.test(l)) ? true : undefined), 10_000, () => proxy.lines.join('\n'));
  // While nothing listens: the empty "no server" answer (not a hang, not a closed connection).
  const down = await app.request(Operation.HAVE, Buffer.from('k'));
  assert.equal(down.length, 0);

  // A new server at the same address: dc_client reconnects within its retry period.
  await server.exited;
  ({ program: server } = await startLoadServer(512, { port }));
  const added = await eventually('dc_client to reconnect', async () => {
    const a = await app.request(Operation.ADD, Buffer.concat([Buffer.from([0, 0, 0x27, 0x10, 0, 0, 0, 1]), Buffer.from('kv2')]));
    return a.length === 1 ? a[0] : undefined;
  });
  assert.equal(added, Status.OK);
  assert.deepEqual(await app.get('k'), Buffer.from('v2'));
  assert.ok(proxy.alive());
});
