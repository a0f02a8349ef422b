// dc_server in every activation mode, with the real tools that hand it its sockets:
// systemd-socket-activate (Accept=no listeners, Accept=yes connections), a real openbsd-inetd with
// a private configuration (nowait and wait), -listen FD:0, and -daemon with -pidfile.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { NODE, listensOn, read, start, waitUntil } from './echo_harness';
import { freePort, onFreePort, PORT_TAKEN } from '../support/free_port';
import { tempDir } from '../support/temp_dir';
import { RawClient, runToExit } from './cache_harness';
import { loadGoldenVectors } from '../cache/golden_vectors';
import { isProcessAlive } from '../../src/activation/index';
import type net from 'node:net';

const DC_SERVER = path.resolve(__dirname, '../../src/cli/dc_server.js');
const BASIC = loadGoldenVectors()[0]!;

/** Replays the basic golden vector (ADD, GET, HAVE, duplicate ADD, REMOVE, misses) on one connection. */
async function replayBasic(dial: net.NetConnectOpts): Promise<void> {
  const c = new RawClient(dial);
  try {
    await c.ready;
    for (const step of BASIC.steps) {
      c.socket.write(step.request);
      assert.equal((await c.take(step.response.length)).toString('hex'), step.response.toString('hex'), step.step);
    }
  } finally {
    c.destroy();
  }
}

test('dc_server under systemd Accept=no serves the inherited TCP and unix listeners without -listen', async (t) => {
  const dir = tempDir(t, 'dc-act-', { mode: 0o755 });
  const sock = path.join(dir, 'dc.sock');
  const logFile = path.join(dir, 'dc.log');
  const { p, port } = await onFreePort(async (port) => {
    const p = start(t, 'systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '-l', sock, NODE, DC_SERVER, '-logfile', logFile]);
    return (await p.waitForBind(/Listening on/)) === PORT_TAKEN ? PORT_TAKEN : { p, port };
  });
  await replayBasic({ host: '127.0.0.1', port });
  await replayBasic({ path: sock });
  assert.match(read(logFile), /mode kind=systemd-listen why="LISTEN_FDS=2 for this pid/);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});

test('dc_server under systemd Accept=yes serves one connection per process', async (t) => {
  const logFile = path.join(tempDir(t, 'dc-act-', { mode: 0o755 }), 'dc.log');
  const { p, port } = await onFreePort(async (port) => {
    const p = start(t, 'systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '--accept', '--fdname=connection', NODE, DC_SERVER, '-logfile', logFile]);
    return (await p.waitForBind(/Listening on/)) === PORT_TAKEN ? PORT_TAKEN : { p, port };
  });
  await replayBasic({ host: '127.0.0.1', port });
  await replayBasic({ host: '127.0.0.1', port });
  await waitUntil(() => (/mode kind=systemd-accept[^]*mode kind=systemd-accept/.test(read(logFile)) ? true : undefined), 5000, () => read(logFile));
  await p.waitFor(/Child \d+ died with code 0[^]*Child \d+ died with code 0/);
});

test('dc_server under a real inetd: nowait (one process per connection, also -listen FD:0) and wait (one process for all)', async (t) => {
  const dir = tempDir(t, 'dc-inetd-', { mode: 0o755 });
  const waitLog = path.join(dir, 'wait.log');
  const conf = path.join(dir, 'inetd.conf');
  const { nowaitPort, fdPort, waitPort } = await onFreePort(async (nowaitPort) => {
    const [fdPort, waitPort] = [await freePort(), await freePort()];
    fs.writeFileSync(conf, [
      `127.0.0.1:${nowaitPort} stream tcp4 nowait root ${NODE} node ${DC_SERVER}`,
      `127.0.0.1:${fdPort} stream tcp4 nowait root ${NODE} node ${DC_SERVER} -listen FD:0`,
      `127.0.0.1:${waitPort} stream tcp4 wait root ${NODE} node ${DC_SERVER} -logfile ${waitLog}`,
      '',
    ].join('\n'));
    const inetd = start(t, '/usr/sbin/inetd', ['-d', conf]);
    if (await listensOn(inetd.child.pid!, [nowaitPort, fdPort, waitPort], () => inetd.output())) return { nowaitPort, fdPort, waitPort };
    inetd.child.kill('SIGKILL');
    return PORT_TAKEN;
  });
  // nowait: every connection a fresh cache, and not one stray byte (fd 2 is the client socket too).
  await replayBasic({ host: '127.0.0.1', port: nowaitPort });
  await replayBasic({ host: '127.0.0.1', port: fdPort });
  // wait: one process keeps the sessions across connections.
  const add = BASIC.steps[0]!;
  const have = BASIC.steps[2]!;
  const first = new RawClient({ host: '127.0.0.1', port: waitPort });
  await first.ready;
  first.socket.write(add.request);
  assert.deepEqual(await first.take(add.response.length), add.response);
  first.destroy();
  const second = new RawClient({ host: '127.0.0.1', port: waitPort });
  await second.ready;
  second.socket.write(have.request);
  assert.deepEqual(await second.take(have.response.length), have.response, 'the session added on the first connection');
  second.destroy();
  const log = await waitUntil(() => (/mode kind=inetd-wait/.test(read(waitLog)) ? read(waitLog) : undefined), 5000, () => read(waitLog));
  const pid = Number(/dc_server\[(\d+)\]/.exec(log)![1]);
  t.after(() => {
    if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  process.kill(pid, 'SIGTERM');
  await waitUntil(() => (isProcessAlive(pid) ? undefined : true), 10_000, () => 'inetd-wait dc_server still alive');
});

test('dc_server -daemon writes its pid file once listening, serves, and stops on SIGTERM', async (t) => {
  const dir = tempDir(t, 'dc-daemon-', { mode: 0o755 });
  const sock = path.join(dir, 'd.sock');
  const pidFile = path.join(dir, 'dc.pid');
  const logFile = path.join(dir, 'dc.log');
  const r = await runToExit('dc_server', ['-listen', `UNIX:${sock}`, '-daemon', '-pidfile', pidFile, '-logfile', logFile]);
  assert.equal(r.code, 0, r.stderr);
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  t.after(() => {
    if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  assert.ok(isProcessAlive(pid));
  await replayBasic({ path: sock });
  // A second one refuses to start while the first one runs.
  const again = await runToExit('dc_server', ['-listen', `UNIX:${path.join(dir, 'e.sock')}`, '-daemon', '-pidfile', pidFile]);
  assert.equal(again.code, 1);
  process.kill(pid, 'SIGTERM');
  await waitUntil(() => (isProcessAlive(pid) ? undefined : true), 10_000, () => 'daemon still alive');
  assert.match(fs.readFileSync(logFile, 'utf8'), /notice: stopped/);
});
