// dc_server's state in its metrics, with the real program: on Debian's real redis-server the
// connection goes to 0 and one outage is counted when Redis stops, the requests it failed are
// counted by Redis command, and the connection is 1 again when Redis is back; with -snapshot each
// write shows its time, duration and sessions, a failed write is counted, and the sessions a
// SIGTERM wrote show as loaded in the next start. promtool accepts every output.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/constants';
import { startRedis } from '../support/redis';
import { tempDir, type AfterHook } from '../support/temp_dir';
import { httpGet, metricsAddressIn, parseSamples, promtoolCheck, sample, scrape, scrapeUntil } from '../support/metrics_scrape';
import { Program, dialOf } from './cache_harness';

async function startWithMetrics(t: AfterHook, args: readonly string[]): Promise<{ server: Program; client: CacheClient; metrics: string }> {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', ...args, '-metrics', '127.0.0.1:0']);
  let client: CacheClient | undefined;
  t.after(() => {
    client?.destroy();
    return server.stop();
  });
  const [address] = await server.listening();
  await server.waitUntil('the metrics line', () => metricsAddressIn(server.stderr) !== undefined);
  client = await CacheClient.connect(dialOf(address!) as { host: string; port: number });
  return { server, client, metrics: metricsAddressIn(server.stderr)! };
}

function assertPromtoolAccepts(text: string): void {
  const checked = promtoolCheck(text);
  assert.equal(checked.status, 0, checked.output);
  assert.equal(checked.output.trim(), '');
}

const ERRORS = 'dc_server_redis_errors_total';

test('dc_server metrics show redis connected 0 and one outage when redis stops, its failed requests by command, and connected 1 when it is back', async (t) => {
  const redis = await startRedis(t);
  const { client, metrics } = await startWithMetrics(t, ['-redis', redis.unixUrl]);
  assert.equal(await client.add('before', 'data', 600_000), Status.OK);
  let { samples } = await scrapeUntil(metrics, 'redis connected', (s) => s.get('dc_server_redis_connected') === 1);
  assert.equal(samples.get('dc_server_redis_outages_total'), 0);
  for (const command of ['set', 'get', 'del', 'exists']) assert.equal(sample(samples, ERRORS, { command }), 0, command);

  await redis.stop();
  ({ samples } = await scrapeUntil(metrics, 'redis not connected', (s) => s.get('dc_server_redis_connected') === 0));
  // Requests while Redis is away: each answered with the failure status at once, and counted.
  const failed = { set: 4, get: 3, del: 2, exists: 1 };
  for (let i = 0; i < failed.set; i++) assert.equal(await client.add(`down-${i}`, 'x', 600_000), Status.NOTOK);
  for (let i = 0; i < failed.get; i++) assert.equal(await client.get('before'), null);
  for (let i = 0; i < failed.del; i++) assert.equal(await client.remove('before'), false);
  for (let i = 0; i < failed.exists; i++) assert.equal(await client.have('before'), false);
  const down = await scrape(metrics);
  samples = parseSamples(down);
  assert.equal(samples.get('dc_server_redis_connected'), 0);
  assert.equal(samples.get('dc_server_redis_outages_total'), 1);
  for (const [command, n] of Object.entries(failed)) assert.equal(sample(samples, ERRORS, { command }), n, command);
  assertPromtoolAccepts(down);

  await redis.restart();
  const back = await scrapeUntil(metrics, 'redis connected again', (s) => s.get('dc_server_redis_connected') === 1);
  assert.equal(back.samples.get('dc_server_redis_outages_total'), 1);
  for (const [command, n] of Object.entries(failed)) assert.equal(sample(back.samples, ERRORS, { command }), n, command);
  assertPromtoolAccepts(back.text);
  assert.equal(await client.add('after', 'back', 600_000), Status.OK);
  const status = JSON.parse((await httpGet(metrics, '/status.json')).body) as { redis: unknown; tiles: Array<{ label: string; value: string }> };
  assert.deepEqual(status.redis, { connected: true, outages: 1, errors: 10 });
  assert.equal(status.tiles.find((tile) => tile.label === 'redis')?.value, 'connected');
});

test('dc_server metrics show each snapshot write and a failed one, and the next start shows the sessions the SIGTERM snapshot put back', async (t) => {
  const dir = path.join(tempDir(t), 'snapshots');
  fs.mkdirSync(dir);
  const snapshot = path.join(dir, 'dc_server.snapshot');
  const startedAt = Date.now() / 1000;
  const first = await startWithMetrics(t, ['-sessions', '1000', '-snapshot', snapshot, '-snapshot-interval', '1']);
  for (let i = 0; i < 50; i++) assert.equal(await first.client.add(`session-${i}`, `secret-${i}`, 600_000), Status.OK);
  const written = await scrapeUntil(first.metrics, 'a snapshot of the 50 sessions', (s) => s.get('dc_server_snapshot_last_write_sessions') === 50);
  let samples = written.samples;
  assert.ok(samples.get('dc_server_snapshot_writes_total')! >= 1);
  assert.equal(samples.get('dc_server_snapshot_write_failures_total'), 0);
  assert.equal(samples.get('dc_server_snapshot_loaded_sessions'), 0);
  const at = samples.get('dc_server_snapshot_last_write_timestamp_seconds')!;
  assert.ok(at >= startedAt - 1 && at <= Date.now() / 1000 + 1, `last write at ${at}`);
  const took = samples.get('dc_server_snapshot_last_write_duration_seconds')!;
  assert.ok(took > 0 && took < 10, `last write took ${took} s`);
  assert.ok(samples.get('dc_server_snapshot_last_write_bytes')! > 50 * 'secret-0'.length);
  assertPromtoolAccepts(written.text);

  // Its directory gone, the next interval write fails and is counted.
  fs.rmSync(dir, { recursive: true, force: true });
  ({ samples } = await scrapeUntil(first.metrics, 'a failed snapshot write', (s) => s.get('dc_server_snapshot_write_failures_total')! >= 1));
  fs.mkdirSync(dir);
  for (let i = 50; i < 70; i++) assert.equal(await first.client.add(`session-${i}`, `secret-${i}`, 600_000), Status.OK);
  first.client.destroy();
  assert.deepEqual(await first.server.stop(), { code: 0, signal: null });
  assert.ok(first.server.lines.some((l) => /snapshot written .*why=stop sessions=70/.test(l)), first.server.stderr);

  const second = await startWithMetrics(t, ['-sessions', '1000', '-snapshot', snapshot]);
  await second.server.waitForLine(/snapshot loaded/);
  const text = await scrape(second.metrics);
  samples = parseSamples(text);
  assert.equal(samples.get('dc_server_snapshot_loaded_sessions'), 70);
  assert.equal(samples.get('dc_server_snapshot_load_expired_sessions'), 0);
  assert.equal(samples.get('dc_server_snapshot_writes_total'), 0);
  assert.equal(samples.get('dc_server_snapshot_last_write_timestamp_seconds'), 0);
  assert.equal(samples.get('dc_server_sessions'), 70);
  assertPromtoolAccepts(text);
  const status = JSON.parse((await httpGet(second.metrics, '/status.json')).body) as { snapshot: { load: { loaded: number } }; tiles: Array<{ label: string; value: string }> };
  assert.equal(status.snapshot.load.loaded, 70);
  assert.equal(status.tiles.find((tile) => tile.label === 'snapshot loaded at start')?.value, '70');
});
