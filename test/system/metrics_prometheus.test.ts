// Debian's Prometheus scraping our three daemons' metrics listeners on loopback: every target
// is up, and a query returns distccd's job counter after real jobs of the distcc client and
// dc_server's operations after real requests. Prometheus runs with its own config and data
// directory on a free port, and is stopped by PID.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { clientEnv, makeMasqueradeDir, run, startDistccd, tempDir } from '../support/distccd_harness';
import { Daemon } from '../support/daemon';
import { onFreePort, PORT_TAKEN } from '../support/free_port';
import { httpGet, metricsAddressIn } from '../support/metrics_scrape';
import { Program, libnalOf } from './cache_harness';
import { CacheClient } from '../../src/cache/client';

interface Prometheus {
  readonly address: string;
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
}

async function startPrometheus(t: { after(fn: () => unknown): void }, dir: string, targets: Record<string, string>): Promise<Prometheus> {
  const config = path.join(dir, 'prometheus.yml');
  await fs.writeFile(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    ...Object.entries(targets).flatMap(([job, address]) => [`  - job_name: ${job}`, '    static_configs:', `      - targets: ['${address}']`]),
    '',
  ].join('\n'));
  return onFreePort(async (port) => {
    const daemon = Daemon.start(t, '/usr/bin/prometheus', [
      `--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, `data-${port}`)}`, `--web.listen-address=127.0.0.1:${port}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    const ready = await daemon.waitForBind(/Server is ready to receive web requests/, 30_000);
    if (ready === PORT_TAKEN) return PORT_TAKEN;
    const address = `127.0.0.1:${port}`;
    return {
      address,
      async query(expr: string) {
        const r = await httpGet(address, `/api/v1/query?query=${encodeURIComponent(expr)}`);
        const body = JSON.parse(r.body) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
        assert.equal(body.status, 'success', r.body);
        return body.data.result;
      },
    };
  });
}

/** Polls an asynchronous probe (a Prometheus query) every 250 ms until it gives a value. */
async function eventually<T>(probe: () => Promise<T | undefined>, ms: number, what: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('prometheus scrapes distccd, dc_server and dc_client and returns our counters when real jobs and requests ran', async (t) => {
  const root = tempDir(t, 'distkit-prometheus-');
  const src = path.join(root, 'src');
  const home = path.join(root, 'home');
  await Promise.all([src, home].map((d) => fs.mkdir(d)));
  await fs.writeFile(path.join(src, 'ok.c'), 'int ok(void) { return 1; }\n');
  const masq = await makeMasqueradeDir(path.join(root, 'masq'), ['gcc', 'x86_64-linux-gnu-gcc']);
  const distccd = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: root }, args: ['--metrics-listen', '127.0.0.1:0'] });
  const distccdMetrics = metricsAddressIn(await distccd.waitFor(/metrics listening on=/))!;

  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', '-metrics', '127.0.0.1:0']);
  t.after(() => server.stop());
  const [serverAddress] = await server.listening();
  const client = new Program('dc_client', ['-listen', `UNIX:${path.join(root, 'dc.sock')}`, '-server', libnalOf(serverAddress!), '-metrics', '127.0.0.1:0']);
  t.after(() => client.stop());
  await client.listening();
  await server.waitUntil('metrics line', () => metricsAddressIn(server.stderr) !== undefined);
  await client.waitUntil('metrics line and upstream', () => metricsAddressIn(client.stderr) !== undefined && /upstream connected/.test(client.stderr));

  const prometheus = await startPrometheus(t, root, { distccd: distccdMetrics, dc_server: metricsAddressIn(server.stderr)!, dc_client: metricsAddressIn(client.stderr)! });
  const up = await eventually(async () => {
    const r = await prometheus.query('up');
    return r.length === 3 && r.every((s) => s.value[1] === '1') ? r : undefined;
  }, 30_000, () => 'all three targets up');
  assert.deepEqual(up.map((s) => s.metric['job']).sort(), ['dc_client', 'dc_server', 'distccd']);

  const env = clientEnv(home, `127.0.0.1:${distccd.port}/4`);
  for (let i = 0; i < 2; i++) assert.equal((await run('distcc', ['gcc', '-c', 'ok.c', '-o', `ok${i}.o`], { cwd: src, env })).code, 0);
  const cache = await CacheClient.connect({ path: path.join(root, 'dc.sock') });
  t.after(() => cache.close());
  assert.equal(await cache.add('id', 'data', 60_000), 0);
  assert.notEqual(await cache.get('id'), null);

  const jobs = await eventually(async () => {
    const r = await prometheus.query('distccd_jobs_total{result="ok"}');
    return r[0]?.value[1] === '2' ? r : undefined;
  }, 30_000, () => 'distccd_jobs_total{result="ok"} = 2 in Prometheus');
  assert.equal(jobs.length, 1);
  await eventually(async () => ((await prometheus.query('sum(dc_server_operations_total{command=~"add|get"})'))[0]?.value[1] === '2' ? true : undefined), 30_000, () => 'dc_server add+get = 2');
  await eventually(async () => ((await prometheus.query('dc_client_upstream_up'))[0]?.value[1] === '1' ? true : undefined), 30_000, () => 'dc_client upstream up');
});
