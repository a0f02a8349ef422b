// The *-metrics.socket units: loopback only, named "metrics", for the service of their program;
// and each program, started the way systemd starts it with that socket beside its own
// (systemd-socket-activate --fdname), serves Prometheus metrics and the status page on the
// metrics fd while its own fd keeps serving its protocol, with no option asking for it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { start } from './echo_harness';
import { DISTCCD, KEEP_ROOT, makeMasqueradeDir, tempDir } from '../support/distccd_harness';
import { freePort, onFreePort, PORT_TAKEN } from '../support/free_port';
import { httpGet, parseSamples, sample } from '../support/metrics_scrape';
import { CacheClient } from '../../src/cache/client';

const root = path.resolve(__dirname, '../../..');

function settingsOf(file: string, key: string): string[] {
  return fs.readFileSync(path.join(root, file), 'utf8').split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
}

for (const program of ['distccd', 'dc_server', 'dc_client']) {
  test(`${program}-metrics.socket is a loopback socket named metrics for ${program}.service when installed`, () => {
    const unit = `systemd/${program}-metrics.socket`;
    assert.deepEqual(settingsOf(unit, 'FileDescriptorName'), ['metrics']);
    assert.deepEqual(settingsOf(unit, 'Service'), [`${program}.service`]);
    assert.deepEqual(settingsOf(unit, 'Accept'), ['no']);
    for (const address of settingsOf(unit, 'ListenStream')) assert.match(address, /^127\.0\.0\.1:\d+$/);
  });
}

/** Runs `command` under systemd-socket-activate with a main socket and one named "metrics". */
async function activated(t: Parameters<typeof start>[0], mainName: string, command: readonly string[]): Promise<{ port: number; metricsPort: number; p: ReturnType<typeof start> }> {
  return onFreePort(async (port) => {
    const metricsPort = await freePort();
    const p = start(t, 'systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '-l', `127.0.0.1:${metricsPort}`, `--fdname=${mainName}:metrics`, ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
    return (await p.waitForBind(/Listening on/)) === PORT_TAKEN ? PORT_TAKEN : { port, metricsPort, p };
  });
}

test('distccd serves metrics on the inherited socket named metrics when systemd passes one', async (t) => {
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-metrics-socket-'), 'masq'));
  const { metricsPort, p } = await activated(t, 'distccd.socket', [process.execPath, DISTCCD, '--no-detach', '--log-stderr', '--no-cache', '--compiler-dir', masq, '--allow', '127.0.0.1', ...KEEP_ROOT]);
  const r = await httpGet(`127.0.0.1:${metricsPort}`, '/metrics');
  assert.equal(r.status, 200, p.output());
  assert.equal(sample(parseSamples(r.body), 'distccd_jobs_total', { result: 'ok' }), 0);
  await p.waitFor(/metrics listening on=fd:4|metrics listening on=127\.0\.0\.1/);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});

test('dc_server serves metrics on the inherited socket named metrics and the cache on the other', async (t) => {
  const { port, metricsPort, p } = await activated(t, 'dc_server.socket', [process.execPath, path.join(root, 'dist/src/cli/dc_server.js')]);
  const client = await CacheClient.connect({ host: '127.0.0.1', port });
  assert.equal(await client.add('x', 'y', 60_000), 0);
  await client.close();
  const r = await httpGet(`127.0.0.1:${metricsPort}`, '/metrics');
  assert.equal(r.status, 200, p.output());
  assert.equal(sample(parseSamples(r.body), 'dc_server_operations_total', { command: 'add', result: 'ok' }), 1);
  assert.match((await httpGet(`127.0.0.1:${metricsPort}`, '/')).body, /^<!doctype html>/);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});
