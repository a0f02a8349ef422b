// The shipped logrotate files (etc/logrotate.d/) run by the real `logrotate -f` as root against
// distccd and dc_server started by root with a log file and a user to become (nobody): the
// rotation's SIGHUP makes the daemon follow the new file, and a rotation that leaves a file the
// daemon may not open (logrotate's `create` for another user) leaves it alive, serving, and
// writing to the old file with a warning that says why. Each config is the shipped file with its
// paths and owner replaced, so what is rotated here is what gets installed. Needs root.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/index';
import { Program } from './cache_harness';
import { jobTree, startDistccd, type RunningDistccd } from '../support/distccd_harness';
import { encodeRequest, sendRaw } from '../support/raw_distcc_client';
import { REPO } from '../support/render_template';
import { tempDir, type AfterHook } from '../support/temp_dir';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
/** What `create` gives the new file: the daemon's own user, or root alone (the broken set-up). */
const GOOD_CREATE = 'create 0640 nobody nogroup';
const BAD_CREATE = 'create 0600 root root';
const REOPEN_LINE = /notice: signal reopen signal=SIGHUP$/;
/** The end of the line a daemon writes to its old file when it cannot open the new one. */
const warningFor = (log: string): string => `warning: log file reopen failed, still writing to the old file file=${log} error=EACCES`;

/** etc/logrotate.d/`name` with each [shipped, ours] replaced (every one must be there), written into `dir`. */
function renderConfig(dir: string, name: string, replacements: ReadonlyArray<readonly [string, string]>): string {
  let text = fs.readFileSync(path.join(REPO, 'etc/logrotate.d', name), 'utf8');
  for (const [from, to] of replacements) {
    assert.ok(text.includes(from), `etc/logrotate.d/${name} no longer says "${from}"`);
    text = text.split(from).join(to);
  }
  const config = path.join(dir, `logrotate-${name}.conf`);
  fs.writeFileSync(config, text);
  return config;
}

/** `logrotate -f` with a private state file, as root. */
function rotate(dir: string, config: string): void {
  const r = spawnSync('logrotate', ['-f', '-s', path.join(dir, 'logrotate.state'), config], { encoding: 'utf8' });
  assert.equal(r.error, undefined, `logrotate did not run (apt-get install logrotate): ${r.error?.message}`);
  assert.equal(r.status, 0, `logrotate failed (${r.status}):\n${r.stdout}${r.stderr}`);
}

function linesOf(file: string): string[] {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  return text === '' ? [] : text.trimEnd().split('\n');
}

/** A log directory as /var/log is: root's, readable by all, writable by root alone. */
function logDir(t: AfterHook): string {
  return tempDir(t, 'distkit-rotate-', { mode: 0o755 });
}

async function startDistccdLogging(t: AfterHook, dir: string): Promise<{ d: RunningDistccd; log: string; config: (create: string) => string }> {
  const tree = await jobTree(t, 'distkit-rotate-job-');
  fs.chmodSync(tree.root, 0o755);
  fs.chmodSync(tree.tmp, 0o1777);
  const log = path.join(dir, 'distccd.log');
  const pid = path.join(dir, 'distccd.pid');
  const d = await startDistccd(t, {
    compilerDir: tree.masq, env: { TMPDIR: tree.tmp }, keepRoot: false,
    args: ['--user', 'nobody', '--log-file', log, '--pid-file', pid],
  });
  await d.waitFor(new RegExp(`privileges dropped .*uid=${NOBODY}`));
  const config = (create: string): string =>
    renderConfig(dir, 'distcc', [['/var/log/distccd.log', log], ['/var/run/distccd.pid', pid], ['create 0640 distccd adm', create]]);
  return { d, log, config };
}

/** A protocol 2 compile through distccd; resolves once its summary line (the job's last) is logged. */
async function compile(d: RunningDistccd, nth: number): Promise<void> {
  const a = await sendRaw(d.port, encodeRequest(2, ['gcc', '-c', 't.c', '-o', 't.o'], 'int f(void){return 1;}\n'));
  assert.ok(a.kind === 'answer' && a.response.status === 0 && a.response.object.length > 0, `compile failed: ${JSON.stringify(a)}`);
  // Each line goes to stderr and to the file in the same call: seen on stderr, it is in the file.
  await d.waitForCount(/ COMPILE_OK /, nth);
}


test('distccd as its own user writes to the new log file after the shipped logrotate file rotates it', { skip: !isRoot && 'needs root' }, async (t) => {
  const dir = logDir(t);
  const { d, log, config } = await startDistccdLogging(t, dir);
  await compile(d, 1);
  rotate(dir, config(GOOD_CREATE));
  assert.equal(fs.statSync(log).uid, NOBODY, 'create gave the new file to the daemon user');
  await d.waitFor(REOPEN_LINE);
  await compile(d, 2);
  const old = linesOf(`${log}.1`);
  assert.ok(old.some((l) => / COMPILE_OK /.test(l)), 'the first compile is in the rotated file');
  assert.match(old.at(-1)!, REOPEN_LINE, 'nothing went to the old file after the reopen');
  const fresh = linesOf(log);
  assert.ok(fresh.some((l) => l.includes(`distccd[${d.child.pid}]`) && / COMPILE_OK /.test(l)), `the second compile is in the new file:\n${fresh.join('\n')}`);
  assert.ok(!fresh.concat(old).some((l) => /reopen failed/.test(l)));
  assert.equal(d.child.exitCode, null, 'distccd is alive');
});

test('distccd keeps serving and warns in the old log file when logrotate leaves a file it may not open', { skip: !isRoot && 'needs root' }, async (t) => {
  const dir = logDir(t);
  const { d, log, config } = await startDistccdLogging(t, dir);
  await compile(d, 1);
  rotate(dir, config(BAD_CREATE));
  assert.equal(fs.statSync(log).uid, 0);
  await d.waitFor(REOPEN_LINE);
  await compile(d, 2);
  assert.equal(d.child.exitCode, null, 'distccd is alive');
  const old = linesOf(`${log}.1`);
  const warning = old.findIndex((l) => l.endsWith(warningFor(log)));
  assert.ok(warning > 0, `no warning in the old file:\n${old.join('\n')}`);
  assert.ok(old.slice(warning).some((l) => / COMPILE_OK /.test(l)), 'the compile after the failed reopen is in the old file');
  assert.deepEqual(linesOf(log), [], 'the unopenable file got nothing');
});

/** dc_server as root with -user nobody, -logfile and -pidfile; it logs to the file alone. */
async function startDcServerLogging(t: AfterHook, dir: string): Promise<{ p: Program; port: number; log: string; config: (create: string) => string }> {
  const log = path.join(dir, 'dc_server.log');
  const pid = path.join(dir, 'dc_server.pid');
  const p = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', '-user', 'nobody', '-logfile', log, '-pidfile', pid, '-loglevel', 'debug']);
  t.after(() => p.stop());
  const listening = await p.until('the listening line in the log file', () => linesOf(log).map((l) => /listening on=127\.0\.0\.1:(\d+)/.exec(l)).find((m) => m !== null), { untilExit: true });
  assert.match(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s`, 'm'), 'dc_server became nobody');
  const config = (create: string): string =>
    renderConfig(dir, 'distcache', [
      ['/var/log/dc_server.log', log], ['/var/log/dc_client.log', path.join(dir, 'dc_client.log')],
      ['/run/distcache/dc_server.pid', pid], ['/run/distcache/dc_client.pid', path.join(dir, 'dc_client.pid')],
      ['create 0640 distcache adm', create],
    ]);
  return { p, port: Number(listening[1]), log, config };
}

/** Waits until a line matching `re` is in `file`, the daemon being alive. */
async function fileSays(p: Program, file: string, re: RegExp): Promise<void> {
  await p.until(`${re} in ${file}`, () => (linesOf(file).some((l) => re.test(l)) ? true : undefined), { untilExit: true });
}

for (const broken of [false, true]) {
  const title = broken
    ? 'dc_server keeps its sessions, serves on and warns in the old log file when logrotate leaves a file it may not open'
    : 'dc_server as its own user writes to the new log file and keeps its sessions after the shipped logrotate file rotates it';
  test(title, { skip: !isRoot && 'needs root' }, async (t) => {
    const dir = logDir(t);
    const { p, port, log, config } = await startDcServerLogging(t, dir);
    const before = await CacheClient.connect({ host: '127.0.0.1', port });
    assert.equal(await before.add('session-1', 'secret-1', 600_000), Status.OK);
    await before.close();
    rotate(dir, config(broken ? BAD_CREATE : GOOD_CREATE));
    assert.equal(fs.statSync(log).uid, broken ? 0 : NOBODY);
    await fileSays(p, `${log}.1`, REOPEN_LINE);
    // Still serving, the session added before the rotation still there.
    const after = await CacheClient.connect({ host: '127.0.0.1', port });
    assert.equal((await after.get('session-1'))?.toString(), 'secret-1');
    assert.equal(await after.add('session-2', 'secret-2', 600_000), Status.OK);
    await after.close();
    // The connection's close line says where the lines after the SIGHUP went.
    const closed = /debug: close .*requests=2\b/;
    await fileSays(p, broken ? `${log}.1` : log, closed);
    assert.ok(p.running, 'dc_server is alive');
    const old = linesOf(`${log}.1`);
    if (broken) {
      const warning = old.findIndex((l) => l.endsWith(warningFor(log)));
      assert.ok(warning > 0 && old.slice(warning).some((l) => closed.test(l)), `no warning before the later lines in the old file:\n${old.join('\n')}`);
      assert.deepEqual(linesOf(log), [], 'the unopenable file got nothing');
    } else {
      assert.match(old.at(-1)!, REOPEN_LINE, 'nothing went to the old file after the reopen');
      assert.ok(!linesOf(log).some((l) => /reopen failed/.test(l)));
    }
  });
}
