import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseCacheAddress,
  resolveCacheAddress,
  toListenSpec,
  toConnectTarget,
  connectOptionsOf,
  describeConnectTarget,
} from '../../src/cache/address';

test('parseCacheAddress reads IP:port and IP::port as every IPv4 interface', () => {
  assert.deepEqual(parseCacheAddress('IP:9001'), { kind: 'tcp', text: 'IP:9001', host: undefined, port: 9001 });
  assert.deepEqual(parseCacheAddress('IP::9001'), { kind: 'tcp', text: 'IP::9001', host: undefined, port: 9001 });
  assert.deepEqual(parseCacheAddress('IPv4:0'), { kind: 'tcp', text: 'IPv4:0', host: undefined, port: 0 });
});

test('parseCacheAddress reads a host and port after IP: and IPv4:', () => {
  assert.deepEqual(parseCacheAddress('IP:127.0.0.1:9001'), { kind: 'tcp', text: 'IP:127.0.0.1:9001', host: '127.0.0.1', port: 9001 });
  assert.deepEqual(parseCacheAddress('IPv4:localhost:65535'), { kind: 'tcp', text: 'IPv4:localhost:65535', host: 'localhost', port: 65535 });
});

test('parseCacheAddress reads a bracketed IPv6 address', () => {
  assert.deepEqual(parseCacheAddress('IP:[::1]:9001'), { kind: 'tcp', text: 'IP:[::1]:9001', host: '::1', port: 9001 });
  assert.throws(() => parseCacheAddress('IP:[zz]:9001'), /"zz" is not an IPv6 address/);
  assert.throws(() => parseCacheAddress('IP:::1:9001'), /IPv6 address in brackets/);
  assert.throws(() => parseCacheAddress('IP:fe80::1:9001'), /IPv6 address in brackets/);
});

test('parseCacheAddress refuses ports outside 0..65535 and non-decimal ports', () => {
  for (const text of ['IP:65536', 'IP:127.0.0.1:99999', 'IP:0x10', 'IP:-1', 'IP:', 'IP:127.0.0.1:', 'IP: 80', 'IP:80 ']) {
    assert.throws(() => parseCacheAddress(text), (e: Error & { code?: string }) => e.code === 'bad-address', text);
  }
});

test('parseCacheAddress is case-sensitive about prefixes and refuses unknown ones', () => {
  for (const text of ['ip:9001', 'Unix:/tmp/x', 'TCP:9001', '9001', '/tmp/sock']) {
    assert.throws(() => parseCacheAddress(text), /start it with IP:, IPv4:, UNIX: or FD:/, text);
  }
});

test('parseCacheAddress enforces the 2..255 character length', () => {
  assert.throws(() => parseCacheAddress('I'), /2 to 255 characters long \(this one has 1\)/);
  assert.throws(() => parseCacheAddress(''), /this one has 0/);
  const long = 'UNIX:/' + 'a'.repeat(250);
  assert.equal(long.length, 256);
  assert.throws(() => parseCacheAddress(long), /this one has 256/);
});

test('parseCacheAddress reads UNIX: paths and refuses those sun_path cannot hold', () => {
  assert.deepEqual(parseCacheAddress('UNIX:/tmp/scache'), { kind: 'unix', text: 'UNIX:/tmp/scache', path: '/tmp/scache' });
  const fits = '/' + 'p'.repeat(106);
  assert.equal((parseCacheAddress('UNIX:' + fits) as { path: string }).path, fits);
  assert.throws(() => parseCacheAddress('UNIX:' + fits + 'x'), /108 bytes but a unix socket path holds at most 107/);
  // Bytes, not characters: 54 two-byte characters are 108 bytes.
  assert.throws(() => parseCacheAddress('UNIX:' + 'é'.repeat(54)), /108 bytes/);
  assert.throws(() => parseCacheAddress('UNIX:'), /give a socket path/);
});

test('parseCacheAddress reads FD:n and FD:read:write', () => {
  assert.deepEqual(parseCacheAddress('FD:0'), { kind: 'fd', text: 'FD:0', read: 0, write: 0 });
  assert.deepEqual(parseCacheAddress('FD:0:1'), { kind: 'fd', text: 'FD:0:1', read: 0, write: 1 });
  assert.deepEqual(parseCacheAddress('FD:-1:1'), { kind: 'fd', text: 'FD:-1:1', read: -1, write: 1 });
  for (const text of ['FD:-1', 'FD:-1:-1', 'FD:x', 'FD:1:2:3', 'FD:65536']) {
    assert.throws(() => parseCacheAddress(text), /Bad address/, text);
  }
});

test('toListenSpec binds 0.0.0.0 for IP:port and carries socket-file options for UNIX:', () => {
  assert.deepEqual(toListenSpec(parseCacheAddress('IP:9001')), { kind: 'tcp', host: '0.0.0.0', port: 9001 });
  assert.deepEqual(toListenSpec(parseCacheAddress('IP:[::1]:0'), { name: 'main' }), { kind: 'tcp', host: '::1', port: 0, name: 'main' });
  assert.deepEqual(toListenSpec(parseCacheAddress('UNIX:/run/x'), { owner: 'nobody', group: 'nogroup', mode: 0o660 }), {
    kind: 'unix',
    path: '/run/x',
    owner: 'nobody',
    group: 'nogroup',
    mode: 0o660,
  });
  assert.throws(() => toListenSpec(parseCacheAddress('FD:0')), /not an address to bind/);
});

test('toConnectTarget needs a host and dials names over IPv4 only', () => {
  assert.throws(() => toConnectTarget(parseCacheAddress('IP:9001')), /name the host to connect to/);
  assert.deepEqual(toConnectTarget(parseCacheAddress('IP:127.0.0.1:9001')), { kind: 'tcp', host: '127.0.0.1', port: 9001 });
  const named = toConnectTarget(parseCacheAddress('IP:localhost:9001'));
  assert.deepEqual(named, { kind: 'tcp', host: 'localhost', port: 9001, family: 4 });
  assert.deepEqual(connectOptionsOf(named), { host: 'localhost', port: 9001, family: 4 });
  assert.deepEqual(connectOptionsOf(toConnectTarget(parseCacheAddress('UNIX:/tmp/s'))), { path: '/tmp/s' });
  assert.equal(describeConnectTarget(toConnectTarget(parseCacheAddress('IP:[::1]:7'))), 'IP:[::1]:7');
  assert.throws(() => toConnectTarget(parseCacheAddress('FD:3')), /not supported/);
});

test('resolveCacheAddress turns localhost into 127.0.0.1 and leaves literals alone', async () => {
  const resolved = await resolveCacheAddress(parseCacheAddress('IP:localhost:9001'));
  assert.deepEqual(resolved, { kind: 'tcp', text: 'IP:localhost:9001', host: '127.0.0.1', port: 9001 });
  const literal = parseCacheAddress('IP:[::1]:9001');
  assert.equal(await resolveCacheAddress(literal), literal);
});
