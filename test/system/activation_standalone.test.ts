// The echo test program as a standalone daemon: binding TCP, IPv6 and unix listeners, the
// connection limit, the graceful stop on SIGTERM and the lifetime.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as posix from 'posix';
import { ECHO, NODE, LineClient, greetAndEcho, start, waitUntil } from './echo_harness';
import { tempDir } from '../support/temp_dir';

function listeningOn(output: string): string[] {
  const m = /listening on=(\S+)/.exec(output);
  return m === null ? [] : m[1]!.split(',');
}

function tcpTarget(address: string): net.NetConnectOpts {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address)!;
  return { host: m[1]!, port: Number(m[2]) };
}

test('standalone echo serves TCP, IPv6 and a unix socket with the asked owner, group and mode', async (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const sock = path.join(dir, 'echo.sock');
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--listen', '[::1]:0', '--listen', `unix:${sock}`,
    '--socket-owner', 'nobody', '--socket-group', 'nogroup', '--socket-mode', '660', '--log-stderr']);
  await p.waitFor(/listening on=/);
  assert.match(p.output(), /^echo_server\[\d+\] notice: mode kind=standalone why="no LISTEN_FDS for this pid and stdin is not a socket"\n/);
  const [v4, v6, unix] = listeningOn(p.output());
  assert.match(v4!, /^127\.0\.0\.1:\d+$/);
  assert.match(v6!, /^\[::1\]:\d+$/);
  assert.equal(unix, `unix:${sock}`);
  assert.match(await greetAndEcho(tcpTarget(v4!)), /^hello conn=1 listener=main peer=tcp active=1$/);
  assert.match(await greetAndEcho(tcpTarget(v6!)), /^hello conn=2 listener=main peer=tcp active=1$/);
  assert.match(await greetAndEcho({ path: sock }), /^hello conn=3 listener=main peer=unix active=1$/);
  const stat = fs.statSync(sock);
  assert.ok(stat.isSocket());
  assert.equal(stat.uid, posix.getpwnam('nobody').uid);
  assert.equal(stat.gid, posix.getgrnam('nogroup').gid);
  assert.equal(stat.mode & 0o777, 0o660);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
  assert.equal(fs.existsSync(sock), false, 'the socket file is removed on a graceful stop');
});

test('standalone echo serves every one of 6 clients but at most 2 at once when --max-connections is 2', async (t) => {
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--max-connections', '2', '--log-stderr']);
  await p.waitFor(/listening on=/);
  const target = tcpTarget(listeningOn(p.output())[0]!);
  const clients = await Promise.all(Array.from({ length: 6 }, () => LineClient.connect(target)));
  t.after(() => clients.forEach((c) => c.close()));
  const greeted = new Set<number>();
  const greetings: string[] = [];
  // Serve in rounds: the 2 served clients are ended, then exactly the next 2 get their greeting.
  for (let round = 0; round < 3; round++) {
    await waitUntil(() => (clients.filter((c) => c.pending.startsWith('hello')).length >= 2 ? true : undefined), 10_000, () => `round ${round}`);
    // Give a wrongly admitted third connection time to show up before counting.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const now = clients.map((c, i) => [c, i] as const).filter(([c]) => c.pending.startsWith('hello'));
    assert.equal(now.length, 2, `exactly 2 served at once in round ${round}`);
    for (const [client, index] of now) {
      greetings.push((await client.readLine())!);
      greeted.add(index);
      client.send('x\n');
      assert.equal(await client.readLine(), 'x');
      client.socket.end();
      assert.equal(await client.readLine(), undefined);
    }
  }
  assert.equal(greeted.size, 6, 'all 6 clients were served');
  for (const g of greetings) assert.match(g, /active=[12]$/);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});

test('standalone echo lowers its priority by --nice', async (t) => {
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--nice', '5', '--log-stderr']);
  await p.waitFor(/listening on=/);
  const stat = fs.readFileSync(`/proc/${p.child.pid}/stat`, 'utf8');
  // Field 19 is the nice value; the test runner itself runs at nice 0 or more.
  const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  assert.equal(nice, Math.min(19, os.getPriority() + 5));
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});

test('standalone echo finishes the connection in flight and exits 0 when sent SIGTERM', async (t) => {
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--log-stderr']);
  await p.waitFor(/listening on=/);
  const target = tcpTarget(listeningOn(p.output())[0]!);
  const client = await LineClient.connect(target);
  t.after(() => client.close());
  assert.match((await client.readLine())!, /^hello/);
  p.child.kill('SIGTERM');
  await p.waitFor(/signal stop signal=SIGTERM\n.*notice: draining active=1/);
  // The listener is closed: a new connection is refused...
  await assert.rejects(LineClient.connect(target), /ECONNREFUSED/);
  // ...but the one in flight is still served to its end.
  client.send('still here\n');
  assert.equal(await client.readLine(), 'still here');
  assert.equal(p.child.exitCode, null, 'still running while a connection is in flight');
  client.send('exit 0\n');
  assert.equal(await client.readLine(), 'bye');
  assert.equal(await p.exited, 0);
  assert.match(p.output(), /notice: stopped/);
});

test('standalone echo stops by itself with status 0 when its --lifetime is over', async (t) => {
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--lifetime', '1', '--log-stderr']);
  assert.equal(await p.exited, 0);
  assert.match(p.output(), /lifetime over ms=1000/);
});

test('standalone echo exits 1 with a clear message when its address is in use', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.after(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const p = start(t, NODE, [ECHO, '--listen', `127.0.0.1:${port}`]);
  assert.equal(await p.exited, 1);
  assert.match(p.output(), new RegExp(`Cannot bind 127\\.0\\.0\\.1:${port}: address in use`));
});

test('standalone echo refuses to delete a file that is not a socket at its unix path', async (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const file = path.join(dir, 'precious');
  fs.writeFileSync(file, 'data');
  const p = start(t, NODE, [ECHO, '--listen', `unix:${file}`]);
  assert.equal(await p.exited, 1);
  assert.match(p.output(), /exists and is not a socket/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'data');
});

test('standalone echo reopens its log file on SIGHUP so a rotated file is let go', async (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const logFile = path.join(dir, 'echo.log');
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--log-file', logFile]);
  await waitUntil(() => (fs.existsSync(logFile) && /listening on=/.test(fs.readFileSync(logFile, 'utf8')) ? true : undefined), 10_000, () => p.output());
  fs.renameSync(logFile, `${logFile}.1`);
  p.child.kill('SIGHUP');
  await waitUntil(() => (fs.existsSync(logFile) ? true : undefined), 10_000, () => 'no new log file');
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
  assert.match(fs.readFileSync(`${logFile}.1`, 'utf8'), /notice: signal reopen signal=SIGHUP\n$/);
  assert.match(fs.readFileSync(logFile, 'utf8'), /^\S+ echo_server\[\d+\] notice: signal stop signal=SIGTERM\n\S+ echo_server\[\d+\] notice: draining active=0 queued=0\n\S+ echo_server\[\d+\] notice: stopped\n$/);
});

test('standalone echo still serves a queued connection after SIGTERM before it exits 0', async (t) => {
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--max-connections', '1', '--log-stderr']);
  await p.waitFor(/listening on=/);
  const target = tcpTarget(listeningOn(p.output())[0]!);
  const first = await LineClient.connect(target);
  t.after(() => first.close());
  assert.match((await first.readLine())!, /^hello conn=1/);
  const queued = await LineClient.connect(target);
  t.after(() => queued.close());
  queued.send('waiting\n');
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(queued.pending, '', 'the second connection waits while the first is served');
  p.child.kill('SIGTERM');
  await p.waitFor(/signal stop signal=SIGTERM/);
  first.send('exit 0\n');
  assert.equal(await first.readLine(), 'bye');
  assert.match((await queued.readLine())!, /^hello conn=2 listener=main peer=tcp active=1$/);
  assert.equal(await queued.readLine(), 'waiting');
  queued.socket.end();
  assert.equal(await queued.readLine(), undefined);
  assert.equal(await p.exited, 0);
});

test('standalone echo in the foreground stops gracefully on SIGINT', async (t) => {
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--log-stderr']);
  await p.waitFor(/listening on=/);
  p.child.kill('SIGINT');
  assert.equal(await p.exited, 0, p.output());
  assert.match(p.output(), /notice: signal stop signal=SIGINT\n.*notice: draining active=0 queued=0\n.*notice: stopped\n$/);
});
