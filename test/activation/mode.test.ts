import { test } from 'node:test';
import assert from 'node:assert/strict';
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
