// `npm start` is what a new operator runs first, and `kill <npm's pid>` (or a supervisor's
// SIGTERM/SIGINT) is how it is stopped: npm forwards the signal to the shell running the start
// script, and nothing may outlive it: not the script, not the two daemons, not its temp directory.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Daemon } from '../support/daemon';
import { groupMembers, isAlive } from '../support/proc';
import { tempDir } from '../support/temp_dir';

const REPO = path.resolve(__dirname, '../../..');

/** Starts `npm start` in its own process group on free ports; resolves once both daemons listen. */
async function npmStart(t: TestContext): Promise<{ npm: Daemon; daemons: Map<string, number>; tmp: string }> {
  // Root's distccd drops to its own user, which compiles in TMPDIR: writable by all, as /tmp is.
  const tmp = tempDir(t, 'distkit-npm-start-', { mode: 0o1777 });
  // Its object cache in a dir of the test's: a root test run leaves no /var/cache/distccd.
  const env = { ...process.env, DISTCCD_PORT: '0', DC_SERVER_PORT: '0', DISTKIT_START_SKIP_BUILD: '1', TMPDIR: tmp, DISTCCD_CACHE_DIR: path.join(tempDir(t, 'distkit-npm-start-cache-'), 'cache') };
  const npm = Daemon.start(t, 'npm', ['start'], { cwd: REPO, env, detached: true });
  // Whatever the test's outcome, nothing of the group is left: ended by its group id, which is npm's pid.
  t.after(() => {
    for (const pid of groupMembers(npm.pid)) process.kill(pid, 'SIGKILL');
  });
  await npm.waitForLines(/^(distccd|dc_server)\[\d+\] notice: listening on=/, 2);
  const daemons = new Map<string, number>();
  for (const line of npm.lines) {
    const m = /^(distccd|dc_server)\[(\d+)\] notice: listening on=/.exec(line);
    if (m) daemons.set(m[1]!, Number(m[2]));
  }
  assert.deepEqual([...daemons.keys()].sort(), ['dc_server', 'distccd']);
  return { npm, daemons, tmp };
}

// npm alone gets the signal from a supervisor or `kill`; Ctrl-C in a terminal sends SIGINT to the
// whole foreground process group: npm, the script, the daemons and the tees that copy their logs.
for (const [signal, whom] of [['SIGTERM', 'npm'], ['SIGINT', 'npm'], ['SIGINT', 'group']] as const) {
  test(`npm start leaves no daemon, script or temp directory behind, and shows both daemons' last lines, when ${whom === 'npm' ? 'npm' : 'its process group (Ctrl-C)'} gets ${signal}`, { timeout: 60_000 }, async (t) => {
    const { npm, daemons, tmp } = await npmStart(t);
    for (const pid of daemons.values()) assert.ok(isAlive(pid), `daemon ${pid} runs before the signal`);

    process.kill(whom === 'npm' ? npm.pid : -npm.pid, signal);
    await npm.until('npm to exit', () => npm.exit, { ms: 20_000 });

    // npm waits for the script, and the script for its daemons: once npm is gone, so are they.
    for (const [name, pid] of daemons) assert.equal(isAlive(pid), false, `${name} (pid ${pid}) outlived npm's ${signal}`);
    assert.deepEqual(groupMembers(npm.pid), [], `processes of npm start's group outlived its ${signal}`);
    assert.deepEqual(fs.readdirSync(tmp), [], 'the start script removes its state directory');
    // ...and the script waits for the copies of their logs: a daemon's last line is never lost.
    for (const [name, pid] of daemons) assert.match(npm.output, new RegExp(`^${name}\\[${pid}\\] notice: stopped$`, 'm'), `${name}'s stopped line`);
  });
}

test('npm start prints its banner once both daemons listen, with the ports they bound', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir(t, 'distkit-npm-banner-', { mode: 0o1777 });
  // Its object cache in a dir of the test's: a root test run leaves no /var/cache/distccd.
  const env = { ...process.env, DISTCCD_PORT: '0', DC_SERVER_PORT: '0', DISTKIT_START_SKIP_BUILD: '1', TMPDIR: tmp, DISTCCD_CACHE_DIR: path.join(tempDir(t, 'distkit-npm-start-cache-'), 'cache') };
  const npm = Daemon.start(t, 'npm', ['start'], { cwd: REPO, env, detached: true });
  t.after(() => {
    for (const pid of groupMembers(npm.pid)) process.kill(pid, 'SIGKILL');
  });
  const banner = await npm.waitFor(/distccd +127\.0\.0\.1:(\d+)[\s\S]*dc_server +127\.0\.0\.1:(\d+)/);
  // The moment the banner is out, both addresses it names accept a connection.
  const ports = [Number(banner[1]), Number(banner[2])];
  for (const port of ports) {
    assert.ok(port > 0, `the banner names the bound port, not ${port}`);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', reject);
    });
  }
  const bound = (name: string): number => Number(new RegExp(`^${name}\\[\\d+\\] notice: listening on=127\\.0\\.0\\.1:(\\d+)`, 'm').exec(npm.output)?.[1]);
  assert.deepEqual(ports, [bound('distccd'), bound('dc_server')]);
  process.kill(npm.pid, 'SIGTERM');
  await npm.until('npm to exit', () => npm.exit, { ms: 20_000 });
});
