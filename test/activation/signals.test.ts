import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installSignals } from '../../src/activation/signals';
import { createLogger } from '../../src/log/index';
import { waitUntil } from '../support/wait_until';

test('installSignals stops once on SIGTERM, reopens on SIGHUP and removes its handlers', async () => {
  const log = createLogger('t');
  log.setSinks([]);
  const events: string[] = [];
  const uninstall = installSignals({ log, foreground: false, stop: (s) => events.push(`stop ${s}`), reopen: () => events.push('reopen') });
  process.kill(process.pid, 'SIGHUP');
  process.kill(process.pid, 'SIGTERM');
  process.kill(process.pid, 'SIGTERM');
  // Signals are handled in the order sent: once this last SIGHUP is seen, both SIGTERMs were.
  process.kill(process.pid, 'SIGHUP');
  await waitUntil(() => (events.filter((e) => e === 'reopen').length === 2 ? true : undefined), 10_000, () => events.join(', '));
  uninstall();
  assert.deepEqual(events, ['reopen', 'stop SIGTERM', 'reopen']);
  assert.equal(process.listenerCount('SIGTERM'), 0);
  assert.equal(process.listenerCount('SIGHUP'), 0);
});
