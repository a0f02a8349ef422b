import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLine, parseLevel, severityOf, createLogger, type LogSink, type Level } from '../../src/log/index';

test('formatLine quotes values with spaces and drops undefined fields', () => {
  assert.equal(formatLine('accept', { peer: '127.0.0.1:5', job: 3, why: 'bad token', x: undefined }), 'accept peer=127.0.0.1:5 job=3 why="bad token"');
});

test('parseLevel accepts syslog names and common aliases and rejects the rest', () => {
  assert.equal(parseLevel('warning'), 'warning');
  assert.equal(parseLevel('ERROR'), 'err');
  assert.throws(() => parseLevel('loud'), /Unknown log level "loud"/);
  assert.equal(severityOf('emerg'), 0);
  assert.equal(severityOf('debug'), 7);
});

test('logger filters by level and child loggers add their fields', () => {
  const lines: Array<[Level, string]> = [];
  const sink: LogSink = { write: (level, line) => lines.push([level, line]) };
  const log = createLogger('t', { level: 'info' });
  log.setSinks([sink]);
  log.debug('hidden');
  log.child({ job: 7 }).info('done', { status: 0 });
  log.err('bad');
  assert.deepEqual(lines, [['info', 'done job=7 status=0'], ['err', 'bad']]);
});
