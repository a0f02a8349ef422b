import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installSignals } from '../../src/activation/signals';
import { createLogger } from '../../src/log/index';

test('installSignals stops once on SIGTERM, reopens on SIGHUP and removes its handlers', async () => {
  const log = createLogger('t');
  log.setSinks([]);
  const events: string[] = [];
  const uninstall = installSignals({ log, foreground: false, stop: (s) => events.push(`stop ${s}`), reopen: () => events.push('reopen') });
  process.kill(process.pid, 'SIGHUP');
  process.kill(process.pid, 'SIGTERM');
  process.kill(process.pid, 'SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  uninstall();
  assert.deepEqual(events, ['reopen', 'stop SIGTERM']);
  assert.equal(process.listenerCount('SIGTERM'), 0);
  assert.equal(process.listenerCount('SIGHUP'), 0);
});
