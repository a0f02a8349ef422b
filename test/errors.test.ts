import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DistkitError, EXIT, EXIT_CODES, UsageError } from '../src/errors';

/** distcc's src/exitcode.h (distcc/distcc f4a7147), the values distccd's clients and scripts know. */
const DISTCC_EXITCODE_H: Record<string, number> = {
  EXIT_DISTCC_FAILED: 100,
  EXIT_BAD_ARGUMENTS: 101,
  EXIT_BIND_FAILED: 102,
  EXIT_CONNECT_FAILED: 103,
  EXIT_COMPILER_CRASHED: 104,
  EXIT_OUT_OF_MEMORY: 105,
  EXIT_BAD_HOSTSPEC: 106,
  EXIT_IO_ERROR: 107,
  EXIT_TRUNCATED: 108,
  EXIT_PROTOCOL_ERROR: 109,
  EXIT_COMPILER_MISSING: 110,
  EXIT_RECURSION: 111,
  EXIT_SETUID_FAILED: 112,
  EXIT_ACCESS_DENIED: 113,
  EXIT_BUSY: 114,
  EXIT_NO_SUCH_FILE: 115,
  EXIT_NO_HOSTS: 116,
  EXIT_GONE: 117,
  EXIT_TIMEOUT: 118,
};

test('EXIT_CODES names each exit status once when the table is read', () => {
  const statuses = Object.values(EXIT_CODES).map((entry) => entry.status);
  assert.equal(new Set(statuses).size, statuses.length);
  for (const [name, entry] of Object.entries(EXIT_CODES)) {
    assert.equal(EXIT[name as keyof typeof EXIT], entry.status);
    assert.ok(entry.meaning.length > 0 && entry.original.length > 0, name);
  }
  assert.ok(Object.isFrozen(EXIT) && Object.isFrozen(EXIT_CODES));
});

test('EXIT keeps the value of distcc\'s exitcode.h when a status comes from distcc', () => {
  const fromDistcc = Object.values(EXIT_CODES).filter((entry) => entry.original.startsWith('EXIT_'));
  assert.ok(fromDistcc.length >= 8);
  for (const entry of fromDistcc) assert.equal(entry.status, DISTCC_EXITCODE_H[entry.original], entry.original);
  assert.deepEqual([EXIT.OK, EXIT.FAILED], [0, 1]);
});

test('UsageError is a DistkitError with code bad-arguments and the exit status it is given', () => {
  const plain = new UsageError('bad -sessions');
  assert.ok(plain instanceof DistkitError);
  assert.equal(plain.code, 'bad-arguments');
  assert.equal(plain.exitCode, undefined);
  assert.equal(plain.name, 'UsageError');
  const distccd = new UsageError('unknown option --x', { exitCode: EXIT.BAD_ARGUMENTS });
  assert.equal(distccd.exitCode, 101);
  assert.equal(distccd.message, 'unknown option --x');
});
