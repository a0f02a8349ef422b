import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeZombie } from '../system/echo_harness';
import { tempDir } from '../support/temp_dir';
import { checkPidFile, isProcessAlive, readPidFile, removePidFile, writePidFile } from '../../src/activation/pid_file';

function tempFile(t: import('node:test').TestContext): string {
  return path.join(tempDir(t, 'distkit-pid-', { mode: 0o755 }), 'x.pid');
}

test('writePidFile writes the pid with a newline and leaves no temp file behind', (t) => {
  const file = tempFile(t);
  writePidFile(file, 1234);
  assert.equal(fs.readFileSync(file, 'utf8'), '1234\n');
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['x.pid']);
  assert.equal(readPidFile(file), 1234);
});

test('checkPidFile refuses a live pid with a message naming it and the file', (t) => {
  const file = tempFile(t);
  writePidFile(file, process.ppid);
  assert.throws(() => checkPidFile(file, 'prog'), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'already-running');
    assert.match(error.message, new RegExp(`^prog is already running with pid ${process.ppid} \\(pid file ${file}\\)`));
    return true;
  });
});

test('checkPidFile returns a dead pid as stale and accepts a missing or garbage file', async (t) => {
  const file = tempFile(t);
  assert.equal(checkPidFile(file, 'prog'), undefined);
  fs.writeFileSync(file, 'garbage\n');
  assert.equal(checkPidFile(file, 'prog'), undefined);
  const child = spawn('true');
  await new Promise((r) => child.once('exit', r));
  writePidFile(file, child.pid!);
  assert.equal(checkPidFile(file, 'prog'), child.pid);
});

test('isProcessAlive is false for a zombie and true for a live process', async (t) => {
  const zombie = await makeZombie(t);
  assert.equal(isProcessAlive(zombie), false);
  assert.equal(isProcessAlive(process.pid), true);
  assert.equal(isProcessAlive(1), true);
});

test('removePidFile removes only a file that still holds our pid', (t) => {
  const file = tempFile(t);
  writePidFile(file, 99999999);
  assert.equal(removePidFile(file, 1), false);
  assert.ok(fs.existsSync(file));
  assert.equal(removePidFile(file, 99999999), true);
  assert.equal(fs.existsSync(file), false);
});

test('writePidFile writes a pid file prepared for it when its directory is not writable (Debian --chuid)', { skip: process.getuid?.() !== 0 && 'needs root to run the writer as nobody' }, async (t) => {
  // As Debian's /etc/init.d/distcc does: root touches and chowns the pid file in a directory the
  // daemon cannot write, then starts the daemon as that user.
  const dir = tempDir(t, 'distkit-pid-chuid-', { mode: 0o755 });
  const file = path.join(dir, 'distccd.pid');
  fs.writeFileSync(file, '123456789\n');
  fs.chownSync(file, 65534, 65534);
  // nobody may not be able to read this checkout (a clone in a 0700 directory): give it its own
  // readable copy of the compiled module and what it imports.
  const code = tempDir(t, 'distkit-pid-code-', { mode: 0o755 });
  fs.mkdirSync(path.join(code, 'activation'));
  fs.copyFileSync(require.resolve('../../src/activation/pid_file'), path.join(code, 'activation', 'pid_file.js'));
  fs.copyFileSync(require.resolve('../../src/errors'), path.join(code, 'errors.js'));
  const module = path.join(code, 'activation', 'pid_file.js');
  const script = `const m = require(${JSON.stringify(module)}); try { m.writePidFile(process.argv[1]); console.log('ok ' + process.pid); } catch (e) { console.log(e.code); }`;
  const run = (target: string) =>
    new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['-e', script, target], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      child.on('close', () => resolve(`${out.trim()}${err === '' ? '' : ` (stderr: ${err.trim()})`}`));
    });
  const written = await run(file);
  assert.match(written, /^ok \d+$/);
  assert.equal(fs.readFileSync(file, 'utf8'), `${written.split(' ')[1]}\n`);
  assert.deepEqual(fs.readdirSync(dir), ['distccd.pid']);
  // Without a prepared file there is nothing it may write: a clear error, as before.
  assert.equal(await run(path.join(dir, 'other.pid')), 'pid-file');
});
