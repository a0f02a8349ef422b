import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as posix from 'posix';
import { raiseFileLimit, resolveGroup, resolveUser } from '../../src/activation/privileges';

test('resolveUser and resolveGroup accept names and numbers', () => {
  assert.deepEqual(resolveUser('root'), { name: 'root', uid: 0, gid: 0 });
  assert.equal(resolveUser('0').name, 'root');
  assert.equal(resolveGroup('root'), 0);
  assert.equal(resolveGroup('0'), 0);
});

test('resolveUser and resolveGroup name the missing account in their error', () => {
  assert.throws(() => resolveUser('no-such-user-distkit'), /Unknown user "no-such-user-distkit": create it/);
  assert.throws(() => resolveGroup('no-such-group-distkit'), /Unknown group "no-such-group-distkit"/);
});

test('resolveUser answers a repeated lookup with the account it found, unchangeable, and a missing one with an error each time', () => {
  const first = resolveUser('root');
  assert.equal(resolveUser('root'), first, 'the same account, not a second lookup');
  assert.ok(Object.isFrozen(first), 'shared between callers, so nobody may change it');
  assert.equal(resolveUser('0').uid, 0);
  for (let i = 0; i < 2; i++) assert.throws(() => resolveUser('no-such-user-distkit'), /Unknown user "no-such-user-distkit"/);
});

test('raiseFileLimit sets the soft RLIMIT_NOFILE to the hard limit', () => {
  const before = posix.getrlimit('nofile');
  const soft = raiseFileLimit();
  const after = posix.getrlimit('nofile');
  assert.equal(after.soft, before.hard ?? before.soft);
  assert.equal(soft, after.soft);
});
