import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeListenSpec, parseListenSpec } from '../../src/activation/address';

test('parseListenSpec reads host:port, [v6]:port, :port, a bare port and unix paths', () => {
  assert.deepEqual(parseListenSpec('127.0.0.1:3632'), { kind: 'tcp', host: '127.0.0.1', port: 3632 });
  assert.deepEqual(parseListenSpec('[::1]:3632'), { kind: 'tcp', host: '::1', port: 3632 });
  assert.deepEqual(parseListenSpec(':3632'), { kind: 'tcp', host: '0.0.0.0', port: 3632 });
  assert.deepEqual(parseListenSpec('3632', { defaultHost: '127.0.0.1' }), { kind: 'tcp', host: '127.0.0.1', port: 3632 });
  assert.deepEqual(parseListenSpec('unix:/run/x.sock', { name: 'admin' }), { kind: 'unix', path: '/run/x.sock', name: 'admin' });
  assert.deepEqual(parseListenSpec('/run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
});

test('parseListenSpec rejects bad ports, bare IPv6 and empty unix paths with the value in the message', () => {
  assert.throws(() => parseListenSpec('127.0.0.1:65536'), /Bad listen address "127\.0\.0\.1:65536": the port must be a number/);
  assert.throws(() => parseListenSpec('host:http'), /Bad listen address "host:http"/);
  assert.throws(() => parseListenSpec('::1:80'), /write IPv6 addresses as \[addr\]:port/);
  assert.throws(() => parseListenSpec('unix:'), /give a socket path/);
});

test('describeListenSpec prints specs as the error messages and logs show them', () => {
  assert.equal(describeListenSpec({ kind: 'tcp', host: '::1', port: 1 }), '[::1]:1');
  assert.equal(describeListenSpec({ kind: 'tcp', host: '127.0.0.1', port: 2 }), '127.0.0.1:2');
  assert.equal(describeListenSpec({ kind: 'unix', path: '/x' }), 'unix:/x');
});
