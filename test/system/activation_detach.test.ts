// The echo test program detaching as a daemon: the starting process exits 0 only once the daemon
// listens and its pid file is written, a live pid file refuses a second start, a stale one (dead
// pid, zombie) is replaced, and --user drops uid, gid and supplementary groups for good.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as posix from 'posix';
import { ECHO, NODE, greetAndEcho, makeZombie, start, waitUntil } from './echo_harness';
import { tempDir } from '../support/temp_dir';
import { isProcessAlive } from '../../src/activation/index';

/** Ends the detached daemon by pid (it is not our child) and waits until it is gone. */
async function reap(t: TestContext, pid: number): Promise<void> {
  if (!isProcessAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  try {
    await waitUntil(() => (isProcessAlive(pid) ? undefined : true), 10_000, () => `daemon ${pid} still alive`);
  } catch (error) {
    process.kill(pid, 'SIGKILL');
    throw error;
  }
  t.diagnostic(`reaped daemon ${pid}`);
}

function statusField(pid: number, field: string): string[] {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return (line ?? '').slice(field.length + 1).trim().split(/\s+/).filter((s) => s !== '');
}

async function startDetached(t: TestContext, pidFile: string, extra: string[] = []): Promise<{ pid: number; port: number; output: string }> {
  const p = start(t, NODE, [ECHO, '--detach', '--pid-file', pidFile, '--listen', '127.0.0.1:0', '--log-stderr', ...extra]);
  const code = await p.exited;
  assert.equal(code, 0, p.output());
  // The moment the starting process exits, the pid file exists and the daemon answers.
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  const m = /detached pid=(\d+) on=127\.0\.0\.1:(\d+)/.exec(p.output());
  assert.ok(m, p.output());
  assert.equal(Number(m[1]), pid);
  t.after(() => reap(t, pid));
  return { pid, port: Number(m[2]), output: p.output() };
}

test('detached echo writes its pid file, serves, runs as nobody and refuses a second start', async (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const pidFile = path.join(dir, 'echo.pid');
  const logFile = path.join(dir, 'echo.log');
  const { pid, port } = await startDetached(t, pidFile, ['--user', 'nobody', '--log-file', logFile]);
  assert.match(await greetAndEcho({ host: '127.0.0.1', port }), /^hello conn=1/);

  const nobody = posix.getpwnam('nobody');
  assert.deepEqual(statusField(pid, 'Uid'), Array(4).fill(String(nobody.uid)));
  assert.deepEqual(statusField(pid, 'Gid'), Array(4).fill(String(nobody.gid)));
  assert.deepEqual(statusField(pid, 'Groups'), [String(nobody.gid)], 'no supplementary group of root is kept');
  // A session of its own: no controlling terminal to lose.
  assert.equal(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[3], String(pid));

  const second = start(t, NODE, [ECHO, '--detach', '--pid-file', pidFile, '--listen', '127.0.0.1:0']);
  assert.equal(await second.exited, 1);
  assert.match(second.output(), new RegExp(`already running with pid ${pid} \\(pid file ${pidFile.replace(/[.]/g, '\\.')}\\)`));
  assert.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(pid));

  await reap(t, pid);
  const log = fs.readFileSync(logFile, 'utf8');
  assert.match(log, new RegExp(`echo_server\\[${pid}\\] notice: privileges dropped user=nobody uid=${nobody.uid} gid=${nobody.gid}`));
  assert.match(log, new RegExp(`echo_server\\[${pid}\\] notice: stopped`));
});

test('detached echo replaces a stale pid file when its pid is dead', async (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const pidFile = path.join(dir, 'echo.pid');
  const gone = spawn('true');
  await new Promise((resolve) => gone.once('exit', resolve));
  fs.writeFileSync(pidFile, `${gone.pid}\n`);
  const logFile = path.join(dir, 'echo.log');
  const { pid } = await startDetached(t, pidFile, ['--log-file', logFile]);
  assert.notEqual(pid, gone.pid);
  assert.match(fs.readFileSync(logFile, 'utf8'), new RegExp(`\\[${pid}\\] notice: pid file stale, replacing file=\\S+ pid=${gone.pid}`));
});

test('detached echo replaces a stale pid file when its pid is a zombie', async (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const pidFile = path.join(dir, 'echo.pid');
  const zombie = await makeZombie(t);
  fs.writeFileSync(pidFile, `${zombie}\n`);
  const logFile = path.join(dir, 'echo.log');
  const { pid } = await startDetached(t, pidFile, ['--log-file', logFile]);
  assert.match(fs.readFileSync(logFile, 'utf8'), new RegExp(`\\[${pid}\\] notice: pid file stale, replacing file=\\S+ pid=${zombie}`));
});

test('detached echo reports the daemon\'s bind error and exits 1 when the address is bad', async (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const pidFile = path.join(dir, 'echo.pid');
  const p = start(t, NODE, [ECHO, '--detach', '--pid-file', pidFile, '--listen', `unix:${dir}/missing/dir.sock`]);
  assert.equal(await p.exited, 1);
  assert.match(p.output(), /Cannot bind unix:\S+dir\.sock: directory does not exist/);
  assert.equal(fs.existsSync(pidFile), false);
});
