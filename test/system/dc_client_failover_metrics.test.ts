// dc_client's failover in its metrics, with two real dc_servers (-server A -server B): each
// server's state, the one requests go to, and a failover counted when A is SIGKILLed and the
// requests move to B; promtool accepts the output and the status page's data agrees.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/constants';
import { tempDir, type AfterHook } from '../support/temp_dir';
import { httpGet, metricsAddressIn, promtoolCheck, sample, scrapeUntil } from '../support/metrics_scrape';
import { Program, libnalOf } from './cache_harness';

async function startServer(t: AfterHook): Promise<{ server: Program; name: string }> {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0']);
  t.after(() => server.stop());
  const [address] = await server.listening();
  return { server, name: libnalOf(address!) };
}

test('dc_client metrics show each server up or down, the one serving, and one failover when the first server is SIGKILLed', async (t) => {
  const a = await startServer(t);
  const b = await startServer(t);
  const sock = path.join(tempDir(t, 'distkit-failover-metrics-'), 'scache');
  const proxy = new Program('dc_client', ['-listen', `UNIX:${sock}`, '-server', a.name, '-server', b.name, '-retry', '200', '-metrics', '127.0.0.1:0', '-loglevel', 'info']);
  t.after(() => proxy.stop());
  await proxy.listening();
  await proxy.waitUntil('both servers connected and the metrics line', () => proxy.lines.filter((l) => /upstream connected/.test(l)).length === 2 && metricsAddressIn(proxy.stderr) !== undefined);
  const metrics = metricsAddressIn(proxy.stderr)!;
  const app = await CacheClient.connect({ path: sock });
  t.after(() => app.destroy());

  assert.equal(await app.add('on-a', 'x', 600_000), Status.OK);
  const before = await scrapeUntil(metrics, 'A serving', (s) => sample(s, 'dc_client_upstream_serving', { server: a.name }) === 1);
  assert.equal(sample(before.samples, 'dc_client_upstream_serving', { server: b.name }), 0);
  assert.equal(sample(before.samples, 'dc_client_upstream_server_up', { server: a.name }), 1);
  assert.equal(sample(before.samples, 'dc_client_upstream_server_up', { server: b.name }), 1);
  assert.equal(before.samples.get('dc_client_upstream_failovers_total'), 0);

  process.kill(a.server.pid, 'SIGKILL');
  await a.server.exited;
  await scrapeUntil(metrics, 'A down', (s) => sample(s, 'dc_client_upstream_server_up', { server: a.name }) === 0);
  assert.equal(await app.add('on-b', 'y', 600_000), Status.OK);
  const after = await scrapeUntil(metrics, 'B serving', (s) => sample(s, 'dc_client_upstream_serving', { server: b.name }) === 1);
  assert.equal(sample(after.samples, 'dc_client_upstream_serving', { server: a.name }), 0);
  assert.equal(sample(after.samples, 'dc_client_upstream_server_up', { server: b.name }), 1);
  assert.equal(after.samples.get('dc_client_upstream_failovers_total'), 1);
  assert.equal(after.samples.get('dc_client_upstream_up'), 1, 'B is up: the proxy has a server');
  const checked = promtoolCheck(after.text);
  assert.equal(checked.status, 0, checked.output);
  assert.equal(checked.output.trim(), '');

  const status = JSON.parse((await httpGet(metrics, '/status.json')).body) as { upstream: { failovers: number; servers: unknown[] }; tables: Array<{ title: string; rows: unknown[][] }> };
  assert.equal(status.upstream.failovers, 1);
  assert.deepEqual(status.upstream.servers, [
    { name: a.name, connected: false, serving: false },
    { name: b.name, connected: true, serving: true },
  ]);
  assert.deepEqual(status.tables.find((table) => table.title.startsWith('Cache servers'))?.rows, [
    [a.name, 'down', ''],
    [b.name, 'up', 'yes'],
  ]);
});
