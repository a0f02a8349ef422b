// The echo test program under systemd's socket-activation protocol, driven by the real
// systemd-socket-activate (no systemd as PID 1 needed): Accept=no with TCP, IPv6 and unix fds and
// their LISTEN_FDNAMES, Accept=yes on fd 3 and on stdin/stdout; and sd_notify read by a real
// AF_UNIX datagram receiver.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ECHO, NODE, LineClient, greetAndEcho, start, waitUntil } from './echo_harness';
import { freePort, onFreePort, PORT_TAKEN } from '../support/free_port';
import { tempDir } from '../support/temp_dir';

const ACTIVATE = 'systemd-socket-activate';

test('echo under systemd Accept=no serves inherited TCP, IPv6 and unix listeners by their LISTEN_FDNAMES', async (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const sock = path.join(dir, 'echo.sock');
  const { p, p4, p6 } = await onFreePort(async (p4) => {
    const p6 = await freePort('::1');
    const p = start(t, ACTIVATE, ['-l', `127.0.0.1:${p4}`, '-l', `[::1]:${p6}`, '-l', sock, '--fdname=tcp4:tcp6:local',
      NODE, ECHO, '--log-stderr', '--max-connections', '4']);
    return (await p.waitForBind(/Listening on/)) === PORT_TAKEN ? PORT_TAKEN : { p, p4, p6 };
  });
  // The first connection starts the program; it then serves all three listeners itself.
  assert.match(await greetAndEcho({ host: '127.0.0.1', port: p4 }), /^hello conn=1 listener=tcp4 peer=tcp/);
  assert.match(await greetAndEcho({ host: '::1', port: p6 }), /^hello conn=2 listener=tcp6 peer=tcp/);
  assert.match(await greetAndEcho({ path: sock }), /^hello conn=3 listener=local peer=unix/);
  assert.match(p.output(), /notice: mode kind=systemd-listen why="LISTEN_FDS=3 for this pid, listening on fds 3=tcp4,4=tcp6,5=local"/);
  assert.match(p.output(), /listening on=127\.0\.0\.1:\d+,\[::1\]:\d+,fd:5 max=4/);
  // Children (compilers) must not inherit our sockets' description.
  const client = await LineClient.connect({ path: sock });
  t.after(() => client.close());
  await client.readLine();
  client.send('env LISTEN_PID\nenv LISTEN_FDS\nenv LISTEN_FDNAMES\n');
  assert.deepEqual([await client.readLine(), await client.readLine(), await client.readLine()],
    ['LISTEN_PID unset', 'LISTEN_FDS unset', 'LISTEN_FDNAMES unset']);
  client.close();
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});

test('echo under systemd Accept=yes serves the connection on fd 3 named "connection" and ends it', async (t) => {
  const { p, port } = await onFreePort(async (port) => {
    const p = start(t, ACTIVATE, ['-l', `127.0.0.1:${port}`, '--accept', '--fdname=connection', NODE, ECHO, '--log-stderr']);
    return (await p.waitForBind(/Listening on/)) === PORT_TAKEN ? PORT_TAKEN : { p, port };
  });
  for (let i = 0; i < 2; i++) {
    const client = await LineClient.connect({ host: '127.0.0.1', port });
    t.after(() => client.close());
    // Each connection is a fresh process: conn=1 every time.
    assert.match((await client.readLine())!, /^hello conn=1 listener=main peer=tcp active=1$/);
    client.send('one\nexit 7\n');
    assert.equal(await client.readLine(), 'one');
    assert.equal(await client.readLine(), 'bye');
    assert.equal(await client.readLine(), undefined, 'EOF once the handler is done');
  }
  assert.match(p.output(), /mode kind=systemd-accept why="LISTEN_FDNAMES=connection, one connection on fd 3"/);
  // The handler's result is the process's exit status.
  await p.waitFor(/Child \d+ died with code 7[^]*Child \d+ died with code 7/);
});

test('echo under systemd --inetd -a serves the connection on stdin/stdout and ends it', async (t) => {
  const { p, port } = await onFreePort(async (port) => {
    const p = start(t, ACTIVATE, ['-l', `127.0.0.1:${port}`, '--inetd', '-a', NODE, ECHO, '--log-stderr']);
    return (await p.waitForBind(/Listening on/)) === PORT_TAKEN ? PORT_TAKEN : { p, port };
  });
  const client = await LineClient.connect({ host: '127.0.0.1', port });
  t.after(() => client.close());
  assert.match((await client.readLine())!, /^hello conn=1 listener=main peer=tcp active=1$/);
  client.send('two\n');
  assert.equal(await client.readLine(), 'two');
  client.socket.end();
  assert.equal(await client.readLine(), undefined);
  await p.waitFor(/mode kind=inetd why="stdin is a connected socket"/);
});

const RECEIVER = `
import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    data = s.recv(4096)
    print(json.dumps(data.decode()), flush=True)
`;

/** The notify messages of a run that lasts at least 400 ms after READY=1, and how long it lasted. */
async function notifyRun(t: import('node:test').TestContext, env: Record<string, string>): Promise<{ messages: string[]; ms: number }> {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const socketPath = path.join(dir, 'notify');
  const receiver = start(t, 'python3', ['-c', RECEIVER, socketPath]);
  await receiver.waitFor(/^bound$/m);
  const messages = (): string[] =>
    receiver.output().split('\n').filter((l) => l.startsWith('"')).map((l) => (JSON.parse(l) as string).trim());
  const p = start(t, NODE, [ECHO, '--listen', '127.0.0.1:0', '--max-connections', '3', '--log-stderr'], {
    env: { ...process.env, NOTIFY_SOCKET: socketPath, ...env },
  });
  await waitUntil(() => (messages().includes('READY=1') ? true : undefined), 10_000, () => receiver.output());
  const ready = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 400)); // the watchdog period is under test
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
  const ms = Date.now() - ready;
  await waitUntil(() => (messages().includes('STOPPING=1') ? true : undefined), 5000, () => receiver.output());
  return { messages: messages(), ms };
}

test('echo tells systemd READY=1, STATUS=, WATCHDOG=1 at half of WATCHDOG_USEC and STOPPING=1 when NOTIFY_SOCKET is set', async (t) => {
  const { messages, ms } = await notifyRun(t, { WATCHDOG_USEC: '200000' });
  assert.equal(messages[0], 'READY=1');
  assert.equal(messages[1], 'STATUS=echo ready max=3');
  // At least 400 ms at a 100 ms period: a few pings, never none, and never more often than the
  // period (counted against the time the run really took, not a guess of it).
  const pings = messages.filter((m) => m === 'WATCHDOG=1').length;
  assert.ok(pings >= 2 && pings <= Math.floor(ms / 100) + 2, `pings: ${pings} in ${ms} ms`);
  assert.ok(messages.includes('STOPPING=1'));
  assert.deepEqual(messages.filter((m) => !['READY=1', 'WATCHDOG=1', 'STOPPING=1'].includes(m) && !m.startsWith('STATUS=')), []);
});

test('echo sends no WATCHDOG=1 when WATCHDOG_PID names another process', async (t) => {
  const { messages } = await notifyRun(t, { WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' });
  assert.equal(messages[0], 'READY=1');
  assert.equal(messages.filter((m) => m === 'WATCHDOG=1').length, 0);
  assert.ok(messages.includes('STOPPING=1'));
});
