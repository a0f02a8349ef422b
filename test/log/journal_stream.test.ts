// Lines for the journal: when stderr is the stream JOURNAL_STREAM names (device:inode, as
// systemd sets it), each line starts with its sd-daemon(3) priority and carries neither time nor
// program[pid]; when JOURNAL_STREAM names another file (inherited, stderr redirected), the plain
// form stays. The real program's stderr is a file here; the container test reads journald itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { journalLine } from '../../src/log/sinks';
import { tempDir } from '../support/temp_dir';

const ECHO = path.resolve(__dirname, '../fixtures/echo_server.js');

/** Runs the echo program for a second with stderr on `file` and JOURNAL_STREAM=`stream`; its stderr text. */
async function stderrOf(file: string, stream: string): Promise<string> {
  const fd = fs.openSync(file, 'w');
  try {
    const child = spawn(process.execPath, [ECHO, '--listen', '127.0.0.1:0', '--log-stderr', '--lifetime', '1'], {
      stdio: ['ignore', 'ignore', fd],
      env: { ...process.env, JOURNAL_STREAM: stream },
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0);
  } finally {
    fs.closeSync(fd);
  }
  return fs.readFileSync(file, 'utf8');
}

test('stderr sink prefixes each line with its priority and nothing else when stderr is the journal stream', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'stderr');
  fs.writeFileSync(file, '');
  const st = fs.statSync(file);
  const text = await stderrOf(file, `${st.dev}:${st.ino}`);
  const lines = text.split('\n').filter((l) => l !== '');
  assert.ok(lines.length >= 3, text);
  // notice is 5: "mode", "listening", "lifetime over", "stopped".
  assert.match(lines[0]!, /^<5>mode kind=standalone why="/);
  assert.ok(lines.includes('<5>stopped'), text);
  for (const line of lines) assert.match(line, /^<[0-7]>(?!.*echo_server\[)/, line);
});

test('stderr sink keeps the plain form when JOURNAL_STREAM names another file than stderr', async (t) => {
  const dir = tempDir(t);
  const other = path.join(dir, 'other');
  fs.writeFileSync(other, '');
  const st = fs.statSync(other);
  const text = await stderrOf(path.join(dir, 'stderr'), `${st.dev}:${st.ino}`);
  assert.match(text, /^echo_server\[\d+\] notice: mode kind=standalone/);
  assert.doesNotMatch(text, /^<\d>/m);
});

test('journalLine gives every line of a multi-line message the priority when it is a warning', () => {
  assert.equal(journalLine('warning', 'first\nsecond'), '<4>first\n<4>second\n');
  assert.equal(journalLine('emerg', 'x'), '<0>x\n');
  assert.equal(journalLine('debug', 'y'), '<7>y\n');
});
