// distccd's Prometheus metrics after real jobs of Debian's distcc client: each job counted once
// under its result (ok, compile failed, refused by reason), the phase histograms counting the
// jobs that went through each phase, bytes by protocol, and promtool accepting the output; the
// status page's data lists the jobs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { clientEnv, makeMasqueradeDir, run, startDistccd, tempDir } from '../support/distccd_harness';
import { httpGet, metricsAddressIn, parseSamples, promtoolCheck, sample, scrape } from '../support/metrics_scrape';

/** Opens a connection from 127.0.0.2, which --allow 127.0.0.1 denies, and waits for the close. */
function deniedConnection(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve() : reject(e)));
    s.once('close', () => resolve());
    s.resume();
  });
}

test('distccd metrics count each real client job once by result when jobs succeed, fail and are refused', async (t) => {
  const root = tempDir(t, 'distkit-metrics-');
  const src = path.join(root, 'src');
  const home = path.join(root, 'home');
  const tmp = path.join(root, 'tmp');
  await Promise.all([src, home, tmp].map((d) => fs.mkdir(d)));
  // The client names g++ x86_64-linux-gnu-g++, which is not in the masquerade dir: those jobs are
  // refused once their request is read.
  const masq = await makeMasqueradeDir(path.join(root, 'masq'), ['gcc', 'x86_64-linux-gnu-gcc']);
  await fs.writeFile(path.join(src, 'ok.c'), 'int ok(void) { return 1; }\n');
  await fs.writeFile(path.join(src, 'bad.c'), 'int bad(void) { return undeclared; }\n');

  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp }, args: ['--metrics-listen', '127.0.0.1:0'] });
  const address = metricsAddressIn(await d.waitFor(/metrics listening on=/));
  assert.ok(address !== undefined && /^127\.0\.0\.1:\d+$/.test(address), `metrics address ${address}`);

  const N = { ok: 3, compileFailed: 2, refusedRequest: 2, refusedAccess: 1 };
  const env = clientEnv(home, `127.0.0.1:${d.port}/4,lzo`);
  const distcc = (args: string[]) => run('distcc', args, { cwd: src, env });
  for (let i = 0; i < N.ok; i++) assert.equal((await distcc(['gcc', '-c', 'ok.c', '-o', `ok${i}.o`])).code, 0);
  for (let i = 0; i < N.compileFailed; i++) assert.notEqual((await distcc(['gcc', '-c', 'bad.c', '-o', `bad${i}.o`])).code, 0);
  for (let i = 0; i < N.refusedRequest; i++) assert.notEqual((await distcc(['g++', '-c', 'ok.c', '-o', `cxx${i}.o`])).code, 0);
  for (let i = 0; i < N.refusedAccess; i++) await deniedConnection(d.port);
  const jobs = N.ok + N.compileFailed + N.refusedRequest;
  // The summary line closes a job: counted by then.
  await d.waitForCount(/\(dcc_job_summary\)/, jobs);
  await d.waitFor(/denied by access list/);

  const text = await scrape(address);
  const samples = parseSamples(text);
  const jobsTotal = (labels: Record<string, string>): number | undefined => sample(samples, 'distccd_jobs_total', labels);
  assert.equal(jobsTotal({ result: 'ok' }), N.ok, text);
  assert.equal(jobsTotal({ result: 'compile_failed' }), N.compileFailed);
  assert.equal(jobsTotal({ result: 'refused', reason: 'request' }), N.refusedRequest);
  assert.equal(jobsTotal({ result: 'refused', reason: 'access' }), N.refusedAccess);
  assert.equal(jobsTotal({ result: 'refused', reason: 'protocol' }), 0);
  for (const result of ['client_gone', 'timed_out', 'error']) assert.equal(jobsTotal({ result }), 0, result);
  assert.equal(sample(samples, 'distccd_connections_total'), jobs + N.refusedAccess);
  assert.equal(sample(samples, 'distccd_connections_open'), 0);
  assert.equal(sample(samples, 'distccd_jobs_running'), 0);
  // Every job read a request, waited for a slot, compiled (or was refused there) and answered.
  for (const phase of ['receive', 'queue', 'compile', 'send']) {
    assert.equal(sample(samples, 'distccd_job_phase_duration_seconds_count', { phase }), jobs, phase);
    assert.equal(sample(samples, 'distccd_job_phase_duration_seconds_bucket', { phase, le: '+Inf' }), jobs, phase);
  }
  assert.ok(sample(samples, 'distccd_job_phase_duration_seconds_sum', { phase: 'compile' })! > 0);
  // ",lzo": protocol 2 both ways; an answer carries at least the object file.
  assert.ok(sample(samples, 'distccd_received_bytes_total', { protocol: '2' })! > 100);
  assert.ok(sample(samples, 'distccd_sent_bytes_total', { protocol: '2' })! > 100 * N.ok);
  assert.ok(sample(samples, 'process_resident_memory_bytes')! > 0, 'default process metrics');
  assert.ok(sample(samples, 'nodejs_eventloop_lag_seconds') !== undefined);
  const checked = promtoolCheck(text);
  assert.equal(checked.status, 0, checked.output);
  assert.equal(checked.output.trim(), '', 'promtool has no complaint');

  const status = JSON.parse((await httpGet(address, '/status.json')).body) as { recent: Array<{ result: string; file: string; compiler: string }>; totals: Record<string, number> };
  assert.equal(status.recent.length, jobs + N.refusedAccess);
  assert.equal(status.recent.filter((j) => j.result === 'COMPILE_OK' && j.file === 'ok.c').length, N.ok);
  assert.equal(status.recent.filter((j) => j.result === 'COMPILE_ERROR' && j.file === 'bad.c').length, N.compileFailed);
  assert.equal(status.recent[0]!.result, 'DENIED', 'newest first');
  assert.deepEqual(status.totals, { ok: N.ok, compile_failed: N.compileFailed, refused: N.refusedRequest + N.refusedAccess, client_gone: 0, timed_out: 0, error: 0 });
  const page = await httpGet(address, '/');
  assert.match(page.type, /^text\/html/);
  assert.doesNotMatch(page.body, /<(script|link|img)[^>]+(src|href)=/i, 'no external assets');
  assert.equal((await httpGet(address, '/nope')).status, 404);
});

test('distccd opens no metrics listener when the option is absent', async (t) => {
  const root = tempDir(t, 'distkit-metrics-off-');
  const masq = await makeMasqueradeDir(path.join(root, 'masq'), ['gcc']);
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: root } });
  await d.waitFor(/ready jobs=/);
  assert.equal(metricsAddressIn(d.lines.join('\n')), undefined);
});
