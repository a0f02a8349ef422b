import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../support/temp_dir';
import { configureLogging, createLogger, fileSink, parseRemoteTarget, protectStderr } from '../../src/log/index';

test('fileSink appends timestamped lines with program and pid and follows a rotation on reopen', (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const file = path.join(dir, 'a.log');
  const sink = fileSink('prog', file);
  sink.write('notice', 'first k=1');
  fs.renameSync(file, `${file}.1`);
  sink.write('err', 'second');
  sink.reopen!();
  sink.write('info', 'third');
  sink.close!();
  const old = fs.readFileSync(`${file}.1`, 'utf8');
  assert.match(old, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z prog\\[${process.pid}\\] notice: first k=1\\n.* prog\\[${process.pid}\\] err: second\\n$`));
  assert.match(fs.readFileSync(file, 'utf8'), new RegExp(`^\\S+ prog\\[${process.pid}\\] info: third\\n$`));
});

test('fileSink keeps writing to the old file and says why when reopen cannot open the path', (t) => {
  // logrotate's `create` may leave a file the dropped user cannot open (EACCES); root passes
  // mode bits, so here a directory takes the file's place (EISDIR), which fails for root too.
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const file = path.join(dir, 'a.log');
  const sink = fileSink('prog', file);
  sink.write('notice', 'before');
  fs.renameSync(file, `${file}.1`);
  fs.mkdirSync(file);
  assert.doesNotThrow(() => sink.reopen!());
  sink.write('notice', 'after');
  sink.close!();
  const lines = fs.readFileSync(`${file}.1`, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines[0]!, / prog\[\d+\] notice: before$/);
  assert.match(lines[1]!, new RegExp(` prog\\[${process.pid}\\] warning: log file reopen failed, still writing to the old file file=${file.replace(/[.]/g, '\\.')} error=EISDIR$`));
  assert.match(lines[2]!, / prog\[\d+\] notice: after$/);
});

test('a root logger reports a sink whose reopen throws and reopens the others when SIGHUP comes', () => {
  const seen: string[] = [];
  let reopened = 0;
  const log = createLogger('prog');
  log.setSinks([
    { write: () => undefined, reopen: () => { throw new Error('gone'); } },
    { write: (level, line) => seen.push(`${level}: ${line}`), reopen: () => void reopened++ },
  ]);
  assert.doesNotThrow(() => log.reopen());
  assert.equal(reopened, 1);
  assert.deepEqual(seen, ['warning: log reopen failed error=gone']);
});

test('parseRemoteTarget reads transport, host and port and defaults to udp port 514', () => {
  assert.deepEqual(parseRemoteTarget('udp:127.0.0.1:5514'), { transport: 'udp', host: '127.0.0.1', port: 5514 });
  assert.deepEqual(parseRemoteTarget('tcp:[::1]:6514'), { transport: 'tcp', host: '::1', port: 6514 });
  assert.deepEqual(parseRemoteTarget('127.0.0.1'), { transport: 'udp', host: '127.0.0.1', port: 514 });
  assert.throws(() => parseRemoteTarget('udp:127.0.0.1:0'), /Bad syslog collector "udp:127\.0\.0\.1:0"/);
  assert.throws(() => parseRemoteTarget('smtp:x:1'), /Bad syslog collector/);
});

test('configureLogging with a file and a level writes only lines at or above the level to the file', (t) => {
  const dir = tempDir(t, 'distkit-act-', { mode: 0o755 });
  const file = path.join(dir, 'b.log');
  const log = createLogger('prog');
  configureLogging(log, { level: 'notice', file, decision: { kind: 'standalone', fds: [] } });
  log.info('hidden');
  log.notice('shown', { a: 1 });
  log.close();
  assert.match(fs.readFileSync(file, 'utf8'), /^\S+ prog\[\d+\] notice: shown a=1\n$/);
});

test('protectStderr leaves fd 2 alone when it is none of the inherited fds', () => {
  const before = fs.fstatSync(2);
  assert.equal(protectStderr({ fds: [] }), false);
  const after = fs.fstatSync(2);
  assert.equal(after.ino, before.ino);
});
