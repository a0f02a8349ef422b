// The daemon's side of the sandbox host's socket (src/native/spawn/sandbox_channel.c), against a
// peer that answers as the host must not: hostRun tells a broken answer from the host's refusal.
// And checkKey, which reads the conditions the sandbox's check is remembered under.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
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

test('checkKey holds the boot, the mount table without ids, the credential lines and the facts, and throws when bwrap is missing', () => {
  const key = native.checkKey('/bin/true', 'as=1:2\0lo=false');
  const parts = key.split('\0');
  assert.equal(parts[0], '/bin/true');
  assert.match(parts[1]!, /^\d+:\d+:\d+:\d+\.\d{9}:\d+\.\d{9}$/, 'bwrap\'s identity, times to the nanosecond');
  assert.equal(parts[2], readFileSync('/proc/sys/kernel/random/boot_id', 'latin1'));
  const mounts = parts.find((p) => p.includes(' - proc '))!;
  for (const line of mounts.split('\n').filter((l) => l !== '')) assert.match(line, /^\/\S* \S+ - \S+ \S+ \S+$/, 'mount point, options, then what follows " - "');
  assert.ok(parts.includes(readFileSync('/proc/self/status', 'latin1').split('\n').find((l) => l.startsWith('CapEff:'))!), 'the capability lines');
  assert.deepEqual(parts.slice(-2), ['as=1:2', 'lo=false'], 'the facts last');
  assert.equal(native.checkKey('/bin/true', 'as=1:2\0lo=false'), key, 'the same while nothing changes');
  assert.throws(() => native.checkKey('/no/such/bwrap', ''), { errno: os.constants.errno.ENOENT, syscall: 'stat' });
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
