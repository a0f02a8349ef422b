// The daemon's side of the sandbox host's socket (src/native/spawn/sandbox_channel.c), against a
// peer that answers as the host must not: hostRun tells a broken answer from the host's refusal.
// And readFacts, which reads the conditions the sandbox's check is remembered under.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as native from 'distkit-spawn';

test('hostRun answers a reply whose descriptors did not all arrive (MSG_CTRUNC) as a broken answer, never as the job\'s pidfd', () => {
  const [daemon, host] = native.hostChannel();
  const fds = [0, 1, 2].map(() => openSync('/dev/null', 'w'));
  try {
    // The "host" answers word 0 with three descriptors where one pidfd fits: what a daemon out of
    // descriptors (EMFILE) gets, its pidfd dropped. Queued first: it sends and finds no reply at once.
    assert.throws(() => native.hostRun(host, Buffer.alloc(4), fds[0]!, fds[1]!, fds[2]!, 0), { errno: os.constants.errno.ETIMEDOUT });
    assert.throws(() => native.hostRun(daemon, Buffer.from('job\0'), fds[0]!, fds[1]!, fds[2]!, 1000),
      (error: Error & { errno?: number; syscall?: string }) => error.errno === os.constants.errno.EPROTO && error.syscall === 'recvmsg');
  } finally {
    for (const fd of [daemon, host, ...fds]) closeSync(fd);
  }
});

test('hostRun answers a host gone before the job as not sent (syscall sendmsg): the job may run elsewhere', () => {
  const [daemon, host] = native.hostChannel();
  const fds = [0, 1, 2].map(() => openSync('/dev/null', 'w'));
  try {
    closeSync(host);
    assert.throws(() => native.hostRun(daemon, Buffer.from('job\0'), fds[0]!, fds[1]!, fds[2]!, 1000), { errno: os.constants.errno.EPIPE, syscall: 'sendmsg' });
  } finally {
    for (const fd of [daemon, ...fds]) closeSync(fd);
  }
});

test('readFacts gives each file\'s bytes whole up to 256 KiB and each link\'s target, and \'\' for what cannot be read', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'distkit-facts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bytes = Buffer.from([0x61, 0x00, 0xff, 0x0a, 0x80]);
  writeFileSync(path.join(dir, 'small'), bytes);
  writeFileSync(path.join(dir, 'large'), Buffer.alloc(300 * 1024, 0x78));
  symlinkSync('/some/target', path.join(dir, 'link'));
  const [small, missing, large, proc, target, notLink] = native.readFacts(
    [path.join(dir, 'small'), path.join(dir, 'missing'), path.join(dir, 'large'), '/proc/self/uid_map'], [path.join(dir, 'link'), path.join(dir, 'small')]);
  assert.deepEqual(Buffer.from(small!, 'latin1'), bytes, 'every byte as it is (latin1)');
  assert.equal(missing, '');
  assert.equal(large, 'x'.repeat(256 * 1024), 'cut at 256 KiB');
  assert.match(proc!, /^\s*\d+\s+\d+\s+\d+\n/, 'a /proc file (size 0 on stat) read whole');
  assert.equal(target, '/some/target');
  assert.equal(notLink, '', 'a file that is not a link');
});

test('identities tells a path rewritten in place, a link by its own, and a missing path apart', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'distkit-ids-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'file');
  const link = path.join(dir, 'link');
  writeFileSync(file, 'one');
  symlinkSync(file, link);
  const [before, ofLink, missing] = native.identities([file, link, path.join(dir, 'missing')]);
  assert.equal(native.identities([file])[0], before, 'stable while nothing changes');
  assert.notEqual(ofLink, before, 'a link is looked at itself, not followed');
  assert.equal(missing, 'absent');
  utimesSync(file, 1_000_000.5, 1_000_000.5); // same size, same inode: the times alone tell
  assert.notEqual(native.identities([file])[0], before);
  assert.match(native.identities([file])[0]!, /:1000000\.500000000:/, 'to the nanosecond');
});
