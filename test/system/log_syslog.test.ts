// The syslog sinks for real: lines of the echo test program read back from a private rsyslogd
// (the program runs in a private mount namespace where /dev/log leads to rsyslogd's private
// socket: the host's /dev is never touched) with facility daemon and the right severity, and the
// remote sink received by a UDP and a TCP collector of the test.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ECHO, NODE, start, waitUntil } from './echo_harness';
import { tempDir } from '../support/temp_dir';
import { isProcessAlive } from '../../src/activation/index';

async function privateRsyslog(t: TestContext): Promise<{ dir: string; socket: string; lines: () => string[] }> {
  const dir = tempDir(t, 'distkit-syslog-', { mode: 0o755 });
  const socket = path.join(dir, 'log.sock');
  const out = path.join(dir, 'out.log');
  const conf = path.join(dir, 'rsyslog.conf');
  fs.writeFileSync(conf, [
    `global(workDirectory="${dir}")`,
    'module(load="imuxsock" SysSock.Use="off")',
    `input(type="imuxsock" Socket="${socket}")`,
    'template(name="probe" type="string" string="%syslogfacility-text% %syslogseverity-text% %syslogtag%%msg%\\n")',
    `*.* action(type="omfile" file="${out}" template="probe")`,
    '',
  ].join('\n'));
  const rsyslogd = start(t, '/usr/sbin/rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslogd.pid')]);
  await waitUntil(() => (fs.existsSync(socket) ? true : undefined), 10_000, () => rsyslogd.output());
  const lines = (): string[] => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter((l) => l !== '') : []);
  return { dir, socket, lines };
}

/** Runs the echo program in a private mount namespace whose /dev/log is `socket`. */
function runWithDevLog(t: TestContext, dir: string, socket: string, args: string[]): ReturnType<typeof start> {
  const upper = fs.mkdtempSync(path.join(dir, 'upper-'));
  const work = fs.mkdtempSync(path.join(dir, 'work-'));
  const script = `mount -t overlay overlay -o lowerdir=/dev,upperdir=${upper},workdir=${work} /dev && ln -s ${socket} /dev/log && exec "$@"`;
  return start(t, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', NODE, ECHO, ...args]);
}

test('syslog sink logs with facility daemon and the line\'s severity to /dev/log when asked or detached', async (t) => {
  const { dir, socket, lines } = await privateRsyslog(t);

  const ok = runWithDevLog(t, dir, socket, ['--listen', '127.0.0.1:0', '--log-syslog', '--lifetime', '1']);
  assert.equal(await ok.exited, 0, ok.output());
  const failing = runWithDevLog(t, dir, socket, ['--listen', `unix:${dir}/no/such/dir.sock`, '--log-syslog']);
  assert.equal(await failing.exited, 1);
  // Without any log option a detached daemon logs to syslog.
  const pidFile = path.join(dir, 'echo.pid');
  const detached = runWithDevLog(t, dir, socket, ['--detach', '--pid-file', pidFile, '--listen', '127.0.0.1:0', '--lifetime', '1']);
  assert.equal(await detached.exited, 0, detached.output());
  const daemonPid = Number(fs.readFileSync(pidFile, 'utf8'));
  t.after(() => {
    if (isProcessAlive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
  });

  await waitUntil(() => (lines().some((l) => l.includes(`echo_server[${daemonPid}]: stopped`)) ? true : undefined), 10_000, () => lines().join('\n'));
  const all = lines();
  const okPid = all.find((l) => l.includes('lifetime over'))!.match(/echo_server\[(\d+)\]/)![1];
  assert.ok(all.includes(`daemon notice echo_server[${okPid}]: mode kind=standalone why="no LISTEN_FDS for this pid and stdin is not a socket"`), all.join('\n'));
  assert.ok(all.some((l) => new RegExp(`^daemon notice echo_server\\[${okPid}\\]: listening on=127\\.0\\.0\\.1:\\d+ max=unlimited$`).test(l)));
  assert.ok(all.some((l) => /^daemon err echo_server\[\d+\]: start failed code=bind-failed error="Cannot bind unix:\S+dir\.sock: directory does not exist/.test(l)), all.join('\n'));
  assert.ok(all.includes(`daemon notice echo_server[${daemonPid}]: mode kind=standalone why="no LISTEN_FDS for this pid and stdin is not a socket"`));
  assert.ok(all.includes(`daemon notice echo_server[${daemonPid}]: stopped`));
});

test('remote sink sends RFC 3164 lines with facility daemon, tag and pid to a UDP collector', async (t) => {
  const collector = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => collector.bind(0, '127.0.0.1', resolve));
  t.after(() => collector.close());
  const received: string[] = [];
  collector.on('message', (m) => received.push(m.toString()));
  const port = collector.address().port;
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--log-remote', `udp:127.0.0.1:${port}`, '--lifetime', '1']);
  assert.equal(await p.exited, 0, p.output());
  const pid = p.child.pid!;
  await waitUntil(() => (received.some((m) => m.includes('stopped')) ? true : undefined), 5000, () => received.join(''));
  // <29> = facility daemon (3) * 8 + severity notice (5); "Mmm dd hh:mm:ss host tag[pid]: msg".
  const hostname = os.hostname().replace(/[.]/g, '\\.');
  assert.match(received[0]!, new RegExp(`^<29>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d ${hostname} echo_server\\[${pid}\\]: mode kind=standalone why="[^"]+"\\n$`));
  assert.ok(received.some((m) => m.endsWith(`echo_server[${pid}]: stopped\n`) && m.startsWith('<29>')));
  // Local default sink is still stderr in the foreground.
  assert.match(p.output(), /notice: stopped/);
});

test('remote sink sends newline-framed lines to a TCP collector', async (t) => {
  let text = '';
  const collector = net.createServer((s) => s.setEncoding('utf8').on('data', (d: string) => (text += d)));
  await new Promise<void>((resolve) => collector.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.after(() => collector.close());
  const port = (collector.address() as net.AddressInfo).port;
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--log-remote', `tcp:127.0.0.1:${port}`, '--lifetime', '1']);
  assert.equal(await p.exited, 0, p.output());
  await waitUntil(() => (text.includes('lifetime over') ? true : undefined), 5000, () => text);
  assert.match(text, new RegExp(`^<29>.* echo_server\\[${p.child.pid}\\]: mode kind=standalone`, 'm'));
});
