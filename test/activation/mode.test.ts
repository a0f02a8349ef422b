import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { detectMode, servesManyConnections, servesOneConnection } from '../../src/activation/mode';

test('detectMode takes the one connection on fd 3 when LISTEN_FDNAMES is "connection" and LISTEN_PID is ours', () => {
  const decision = detectMode('auto', { env: { LISTEN_PID: '7', LISTEN_FDS: '1', LISTEN_FDNAMES: 'connection' }, pid: 7 });
  assert.deepEqual(decision, {
    kind: 'systemd-accept',
    why: 'LISTEN_FDNAMES=connection, one connection on fd 3',
    fds: [{ fd: 3, name: 'main', kind: 'connection' }],
  });
  assert.equal(servesOneConnection(decision), true);
});

test('detectMode chooses standalone for --daemon when LISTEN_PID names another process', () => {
  const decision = detectMode('daemon', { env: { LISTEN_PID: '8', LISTEN_FDS: '1', LISTEN_FDNAMES: 'connection' }, pid: 7 });
  assert.equal(decision.kind, 'standalone');
  assert.equal(decision.why, '--daemon given and no LISTEN_FDS for this pid');
  assert.deepEqual(decision.fds, []);
  assert.equal(servesManyConnections(decision), true);
});

test('detectMode lets LISTEN_FDS win over --daemon and skips fds that are not listening sockets', () => {
  // fds 3 and 4 of this test process are not listeners: they are never adopted (listen({fd})
  // on them would close them).
  const decision = detectMode('daemon', { env: { LISTEN_PID: '7', LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b' }, pid: 7 });
  assert.equal(decision.kind, 'systemd-listen');
  assert.deepEqual(decision.fds, []);
  assert.match(decision.why, /^LISTEN_FDS=2 for this pid, listening on fds none$/);
});

test('detectMode tells a listener from a connection when systemd hands them over from another network namespace (PrivateNetwork=yes)', (t) => {
  // The sockets are made here and passed as fd 3 to a node in a new network namespace, whose
  // /proc/net does not list them: exactly what a service with PrivateNetwork=yes is handed. The
  // socket itself (SO_ACCEPTCONN) still says which it is, named by systemd or not.
  const script = [
    "const { detectMode } = require(process.argv[1]);",
    "const named = detectMode('auto', { env: { LISTEN_PID: String(process.pid), LISTEN_FDS: '1', LISTEN_FDNAMES: 'distccd.socket' } });",
    "const unnamed = detectMode('auto', { env: { LISTEN_PID: String(process.pid), LISTEN_FDS: '1' } });",
    "console.log(JSON.stringify({ named: [named.kind, named.fds], unnamed: [unnamed.kind, unnamed.fds] }));",
  ].join('\n');
  const mode = require.resolve('../../src/activation/mode');
  const py = [
    'import os, socket, subprocess, sys',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)',
    'c = socket.create_connection(s.getsockname()); a, _ = s.accept()',
    'for sock in (s, a):',
    '    os.dup2(sock.fileno(), 3)',
    '    r = subprocess.run(["unshare", "--net", sys.argv[1], "-e", sys.argv[2], sys.argv[3]], pass_fds=(3,), capture_output=True, text=True)',
    '    sys.stdout.write(r.stdout + r.stderr)',
  ].join('\n');
  const out = execFileSync('python3', ['-c', py, process.execPath, script, mode], { encoding: 'utf8' });
  t.diagnostic(out);
  type Seen = { named: [string, unknown[]]; unnamed: [string, unknown[]] };
  const [listener, connection] = out.trim().split('\n').map((line) => JSON.parse(line) as Seen);
  assert.deepEqual(listener?.named, ['systemd-listen', [{ fd: 3, name: 'distccd.socket', kind: 'listening' }]]);
  // /proc/net could not see it, so without systemd's names it was taken for the one connection.
  assert.deepEqual(listener?.unnamed, ['systemd-listen', [{ fd: 3, name: 'main', kind: 'listening' }]]);
  assert.deepEqual(connection?.unnamed, ['systemd-accept', [{ fd: 3, name: 'main', kind: 'connection' }]]);
  // A named connection stays a connection: the /proc/net check took it for a listener, and listen({ fd }) closed it.
  assert.deepEqual(connection?.named, ['systemd-accept', [{ fd: 3, name: 'main', kind: 'connection' }]]);
});
