// The daemon's side of the sandbox host's socket (src/native/spawn/sandbox_channel.c), against a
// peer that answers as the host must not: hostRun tells a broken answer from the host's refusal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import os from 'node:os';
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
