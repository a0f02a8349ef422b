// The echo test program under a real openbsd-inetd (private configuration, foreground, free
// ports): a nowait service (one process per connection, the client socket on fds 0, 1 AND 2) and
// a wait service (the listening socket on fd 0); and over two pipes as distcc's ssh mode runs it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ECHO, NODE, LineClient, listensOn, read, start, waitUntil } from './echo_harness';
import { freePort, onFreePort, PORT_TAKEN } from '../support/free_port';
import { tempDir } from '../support/temp_dir';
import { isProcessAlive } from '../../src/activation/index';

test('echo under inetd nowait and wait serves its connections and never writes a log line to the client', async (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const nowaitLog = path.join(dir, 'nowait.log');
  const waitLog = path.join(dir, 'wait.log');
  const conf = path.join(dir, 'inetd.conf');
  const { nowaitPort, waitPort } = await onFreePort(async (nowaitPort) => {
    const waitPort = await freePort();
    fs.writeFileSync(conf, [
      // --log-stderr on purpose: fd 2 is the client socket, the program must move it to the log file.
      `127.0.0.1:${nowaitPort} stream tcp4 nowait root ${NODE} node ${ECHO} --inetd --log-stderr --log-file ${nowaitLog}`,
      `127.0.0.1:${waitPort} stream tcp4 wait root ${NODE} node ${ECHO} --log-stderr --log-file ${waitLog}`,
      '',
    ].join('\n'));
    const inetd = start(t, '/usr/sbin/inetd', ['-d', conf]);
    if (await listensOn(inetd.child.pid!, [waitPort, nowaitPort], () => inetd.output())) return { nowaitPort, waitPort };
    inetd.child.kill('SIGKILL');
    return PORT_TAKEN;
  });
  // nowait: a process per connection; everything the client reads is protocol.
  for (const n of [1, 2]) {
    const client = await LineClient.connect({ host: '127.0.0.1', port: nowaitPort });
    t.after(() => client.close());
    assert.equal(await client.readLine(), 'hello conn=1 listener=main peer=tcp active=1', `connection ${n}`);
    client.send('over inetd\nexit 5\n');
    assert.equal(await client.readLine(), 'over inetd');
    assert.equal(await client.readLine(), 'bye');
    assert.equal(await client.readLine(), undefined, 'EOF and nothing else (no stray log line)');
  }
  await waitUntil(() => (/info: done conn=1[^]*info: done conn=1/.test(read(nowaitLog)) ? true : undefined), 5000, () => read(nowaitLog));
  assert.match(read(nowaitLog), /notice: mode kind=inetd why="stdin is a connected socket"/);

  // wait: one process accepts every connection on the inherited listening socket.
  const pids = new Set<string>();
  for (const n of [1, 2]) {
    const client = await LineClient.connect({ host: '127.0.0.1', port: waitPort });
    t.after(() => client.close());
    assert.match((await client.readLine())!, new RegExp(`^hello conn=${n} listener=main peer=tcp`));
    client.send('pid\n');
    pids.add((await client.readLine())!);
    client.socket.end();
    assert.equal(await client.readLine(), undefined);
  }
  assert.equal(pids.size, 1, 'one process served both connections');
  const waitPid = Number([...pids][0]);
  t.after(() => {
    if (isProcessAlive(waitPid)) process.kill(waitPid, 'SIGKILL');
  });
  assert.match(read(waitLog), /notice: mode kind=inetd-wait why="stdin is a listening socket/);
  assert.match(read(waitLog), /listening on=127\.0\.0\.1:\d+/);
  process.kill(waitPid, 'SIGTERM');
  await waitUntil(() => (isProcessAlive(waitPid) ? undefined : true), 10_000, () => 'inetd-wait child still alive');
  assert.match(read(waitLog), /notice: stopped/);
});

// Node's 'pipe' stdio is a socketpair; this relay gives the program two real pipes, as sshd
// does, and exits with its status once the program's stdout reaches EOF.
const RELAY = `
import os, subprocess, sys, threading
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def pump():
    for chunk in iter(lambda: os.read(0, 65536), b''):
        p.stdin.write(chunk)
        p.stdin.flush()
    p.stdin.close()
threading.Thread(target=pump, daemon=True).start()
for chunk in iter(lambda: os.read(p.stdout.fileno(), 65536), b''):
    os.write(1, chunk)
sys.exit(p.wait())
`;

test('echo --inetd over two pipes (ssh) serves one connection, sees EOF and exits with the handler result', async (t) => {
  const p = start(t, 'python3', ['-c', RELAY, NODE, ECHO, '--inetd', '--log-stderr'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  p.child.stdout!.on('data', (s: string) => (stdout += s));
  p.child.stdin!.write('over ssh\n');
  await waitUntil(() => (stdout.includes('over ssh\n') ? true : undefined), 10_000, () => p.output());
  p.child.stdin!.write('exit 9\n');
  // The handler's "exit 9" ends the connection and the program while stdin is still open.
  assert.equal(await p.exited, 9);
  assert.equal(stdout, 'hello conn=1 listener=main peer=pipe active=1\nover ssh\nbye\n');
  assert.match(p.output(), /mode kind=inetd why="--inetd given and stdin is a pipe \(ssh\); serving one connection over stdin\/stdout"/);
});

test('echo --inetd over pipes ends with status 0 and closes stdout when the peer closes stdin', async (t) => {
  const p = start(t, 'python3', ['-c', RELAY, NODE, ECHO, '--inetd'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  p.child.stdout!.on('data', (s: string) => (stdout += s));
  p.child.stdin!.end('last\n');
  assert.equal(await p.exited, 0);
  assert.equal(stdout, 'hello conn=1 listener=main peer=pipe active=1\nlast\n');
});

test('echo --inetd on two socketpairs (another sshd) reads stdin and writes stdout', async (t) => {
  const p = start(t, NODE, [ECHO, '--inetd', '--log-stderr'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  p.child.stdout!.on('data', (s: string) => (stdout += s));
  p.child.stdin!.write('exit 4\n');
  assert.equal(await p.exited, 4);
  assert.equal(stdout, 'hello conn=1 listener=main peer=pipe active=1\nbye\n');
  assert.match(p.output(), /mode kind=inetd why="--inetd given and stdin and stdout are two different sockets \(ssh\)/);
});

test('echo without --inetd runs standalone when a supervisor gives it socketpair stdio', async (t) => {
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--log-stderr', '--lifetime', '1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  assert.equal(await p.exited, 0);
  assert.match(p.output(), /mode kind=standalone why="no LISTEN_FDS for this pid and stdin is a socket other than stdout \(not inetd\)"/);
});
