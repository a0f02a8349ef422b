// distccd as a standalone daemon: --stats serves the counters page on its own port, and --daemon
// detaches once listening, leaving the long-running pid in --pid-file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { DISTCCD, fetchStatsPage, KEEP_ROOT, makeMasqueradeDir, runDistccd, startDistccd, tempDir } from '../support/distccd_harness';
import { encodeRequest, sendRaw } from '../support/raw_distcc_client';

const SOURCE = 'int f(int x) { return x + 1; }\n';

test('distccd --stats serves the counters page with the jobs it ran', async (t) => {
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-stats-'), 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, stats: true });
  const ok = await sendRaw(d.port, encodeRequest(2, ['gcc', '-c', 't.c', '-o', 't.o'], SOURCE));
  assert.equal(ok.kind === 'answer' && ok.response.status, 0);
  const bad = await sendRaw(d.port, encodeRequest(1, ['gcc', '-c', 'bad.c', '-o', 'bad.o'], 'int x(void) { return }\n'));
  assert.equal(bad.kind === 'answer' && bad.response.status, 1 << 8);
  await d.waitForCount(/ COMPILE_(OK|ERROR) /, 2);
  const page = await fetchStatsPage(d.statsPort);
  assert.match(page, /^HTTP\/1\.0 200 OK\nContent-Type: text\/plain\nConnection: close\n\nargv \/distccd\n<distccstats>\n/);
  assert.match(page, /\ndcc_tcp_accept 2\n/);
  assert.match(page, /\ndcc_compile_ok 1\n/);
  assert.match(page, /\ndcc_compile_error 1\n/);
  assert.match(page, /\ndcc_longest_job t\.c\ndcc_longest_job_compiler gcc\n/);
  assert.match(page, /<\/distccstats>\n$/);
});

test('distccd --daemon detaches once listening and keeps the serving pid in --pid-file', async (t) => {
  const dir = tempDir(t, 'distkit-detach-');
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  const pidFile = path.join(dir, 'distccd.pid');
  const logFile = path.join(dir, 'distccd.log');
  const starter = spawn(process.execPath, [DISTCCD, '--daemon', '--listen', '127.0.0.1', '-p', '0', '--allow', '127.0.0.1',
    '--pid-file', pidFile, '--log-file', logFile, '--cache-dir', path.join(dir, 'cache'), '--compiler-dir', masq, ...KEEP_ROOT], { stdio: 'ignore' });
  const code = await new Promise((r) => starter.once('exit', r));
  assert.equal(code, 0, 'exit 0 means listening');
  // The daemon logs its address before it tells the starter it listens.
  const port = Number(/listening on=127\.0\.0\.1:(\d+)/.exec(await fs.readFile(logFile, 'utf8'))?.[1]);
  assert.ok(port > 0, 'the listening line names the port');
  const pid = Number((await fs.readFile(pidFile, 'utf8')).trim());
  t.after(() => {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already stopped by the test
    }
  });
  assert.notEqual(pid, starter.pid);
  const r = await sendRaw(port, encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], SOURCE));
  assert.equal(r.kind === 'answer' && r.response.status, 0);
  process.kill(pid, 'SIGTERM');
  const end = Date.now() + 10_000;
  while (Date.now() < end && (await fs.access(pidFile).then(() => true, () => false))) await new Promise((res) => setTimeout(res, 50));
  await assert.rejects(fs.access(pidFile), 'the pid file is removed on a clean stop');
  assert.match(await fs.readFile(logFile, 'utf8'), /client: 127\.0\.0\.1:\d+ COMPILE_OK /);
});

test('distccd --lifetime exits 0 by itself after that many seconds', async (t) => {
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-lifetime-'), 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, args: ['--lifetime', '1'] });
  const r = await sendRaw(d.port, encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], SOURCE));
  assert.equal(r.kind === 'answer' && r.response.status, 0);
  assert.equal(await d.exited, 0);
  await d.waitFor(/lifetime over/);
});

/** The dcc_tcp_accept counter of the stats page: connections the daemon has accepted. */
async function acceptedSoFar(statsPort: number): Promise<number> {
  const m = /\ndcc_tcp_accept (\d+)\n/.exec(await fetchStatsPage(statsPort));
  assert.ok(m !== null, 'the stats page has a dcc_tcp_accept line');
  return Number(m[1]);
}

/** Connects and sends nothing; the test's cleanup closes the socket if the test has not. */
async function silentConnection(t: { after: (fn: () => void) => void }, port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  t.after(() => s.destroy());
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

test('distccd accepts a connection only once the client has sent something (TCP_DEFER_ACCEPT, as C)', async (t) => {
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-defer-'), 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, stats: true });
  await d.waitFor(new RegExp(`TCP_DEFER_ACCEPT set on=127\\.0\\.0\\.1:${d.port}\\b`));
  const connected = Date.now();
  const s = await silentConnection(t, d.port);
  // The kernel keeps a silent connection from accept() for the 1 s deferral, then hands it over.
  await new Promise((r) => setTimeout(r, 300));
  const accepted = await acceptedSoFar(d.statsPort);
  const elapsed = Date.now() - connected;
  if (elapsed < 900) assert.equal(accepted, 0, `a connection that has sent nothing is not accepted ${elapsed} ms after connecting`);
  else t.diagnostic(`the stats page took until ${elapsed} ms after the connect, too close to the 1 s deferral to tell`);
  // The same connection then carries a whole job.
  const answer = new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.once('close', () => resolve(Buffer.concat(chunks)));
  });
  s.write(encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], SOURCE));
  assert.match((await answer).toString('latin1', 0, 24), /^DONE00000001STAT00000000/);
  assert.equal(await acceptedSoFar(d.statsPort), 1);
});

test('distccd accepts at once with DISTCC_TCP_DEFER_ACCEPT=0', async (t) => {
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-defer-off-'), 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, stats: true, env: { DISTCC_TCP_DEFER_ACCEPT: '0' } });
  await d.waitFor(/listening/);
  assert.ok(!d.lines.some((l) => l.includes('TCP_DEFER_ACCEPT')), 'nothing is said about a socket option that was not asked for');
  const s = await silentConnection(t, d.port);
  const until = Date.now() + 5000;
  while ((await acceptedSoFar(d.statsPort)) === 0) {
    assert.ok(Date.now() < until, 'the silent connection is accepted within 5 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  s.destroy(); // else the daemon's stop would wait out the request timeout for it
});

test('distccd --zeroconf exits 101 with what to install when avahi-publish is missing', async (t) => {
  const dir = tempDir(t, 'distkit-zeroconf-');
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  // A PATH that has a shell and nothing else, wherever this machine keeps avahi-publish.
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  await fs.symlink('/bin/sh', path.join(bin, 'sh'));
  const { code, stderr } = await runDistccd(['--daemon', '--no-detach', '--zeroconf', '--listen', '127.0.0.1', '--port', '3632',
    '--allow', '127.0.0.1', '--log-stderr', '--compiler-dir', masq, ...KEEP_ROOT], { cwd: dir, env: { PATH: bin } });
  assert.equal(code, 101, stderr);
  assert.match(stderr, /--zeroconf needs avahi-publish \(apt-get install avahi-utils\)/);
  assert.doesNotMatch(stderr, /listening/, 'it stops before it listens');
});
