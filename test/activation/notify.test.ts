import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Notifier } from '../../src/activation/notify';

test('Notifier does nothing and loads nothing when NOTIFY_SOCKET is not set', () => {
  const notifier = new Notifier({});
  assert.equal(notifier.enabled, false);
  notifier.ready('x');
  notifier.status('y');
  notifier.stopping();
  notifier.close();
});
