import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLine, parseLevel, recordLine, severityOf, createLogger, tagAsC, type LogSink, type Level } from '../../src/log/index';

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

test('recordLine writes program, pid and level, and a line tagged by tagAsC exactly as C distccd does', () => {
  const at = new Date('2026-01-02T03:04:05.678Z');
  assert.equal(recordLine('distccd', 42, 'notice', 'listening on=127.0.0.1:3632'), 'distccd[42] notice: listening on=127.0.0.1:3632');
  assert.equal(recordLine('distccd', 42, 'notice', 'listening on=127.0.0.1:3632', at), '2026-01-02T03:04:05.678Z distccd[42] notice: listening on=127.0.0.1:3632');
  const summary = tagAsC('dcc_job_summary', 'client: 127.0.0.1:5 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:22ms gcc t.c');
  assert.equal(summary, '(dcc_job_summary) client: 127.0.0.1:5 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:22ms gcc t.c');
  for (const time of [undefined, at]) {
    assert.equal(recordLine('distccd', 42, 'notice', summary, time), 'distccd[42] (dcc_job_summary) client: 127.0.0.1:5 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:22ms gcc t.c');
  }
});
