// The spawn's resource limits (src/native/spawn, spawn's `limits`): set between fork and exec on
// the child, soft and hard, where the sandbox had an exec of prlimit before bwrap.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as native from 'distkit-spawn';
import { openCaptures } from '../../src/compile/compiler_process';
import { tempDir } from '../support/temp_dir';

/** Runs `argv` through the addon with `limits`; its wait status and stdout. */
async function spawned(dir: string, argv: string[], limits?: native.Limits): Promise<{ status: number; stdout: string }> {
  const files = openCaptures(dir);
  try {
    const pid = native.spawn(argv[0]!, argv, ['PATH=/usr/bin:/bin'], dir, files.stdout, files.stderr, limits);
    const status = await new Promise<number>((resolve, reject) => {
      native.watch(pid, (s) => (s instanceof Error ? reject(s) : resolve(s)));
    });
    return { status, stdout: readFileSync(`/proc/self/fd/${files.stdout}`, 'latin1') };
  } finally {
    files.close();
  }
}

const LIMITS = ['Max address space', 'Max cpu time', 'Max file size', 'Max processes'];

/** The soft and hard values of LIMITS in a /proc/PID/limits text. */
function limitsOf(text: string): string[] {
  return LIMITS.map((name) => {
    const line = text.split('\n').find((l) => l.startsWith(name)) ?? '';
    return line.slice(26).trim().split(/\s+/).slice(0, 2).join(' ');
  });
}

test('spawn sets the address space, CPU time, file size and process limits of the child when given', async (t) => {
  const dir = tempDir(t, 'distkit-limits-');
  const limited = await spawned(dir, ['cat', '/proc/self/limits'], { as: 3 * 2 ** 30, cpu: 77, fsize: 5 << 20, nproc: 123 });
  assert.equal(limited.status, 0);
  assert.deepEqual(limitsOf(limited.stdout), [`${3 * 2 ** 30} ${3 * 2 ** 30}`, '77 77', `${5 << 20} ${5 << 20}`, '123 123']);
  const own = limitsOf(readFileSync('/proc/self/limits', 'latin1'));
  const plain = await spawned(dir, ['cat', '/proc/self/limits']);
  assert.deepEqual(limitsOf(plain.stdout), own, 'without limits, the daemon\'s own');
  assert.deepEqual(limitsOf(readFileSync('/proc/self/limits', 'latin1')), own, 'the daemon keeps its own');
});

test('spawn enforces the file size limit on the child (SIGXFSZ) and refuses malformed limits', async (t) => {
  const dir = tempDir(t, 'distkit-limits-');
  const big = await spawned(dir, ['dd', 'if=/dev/zero', `of=${dir}/big`, 'bs=4096', 'count=64'], { fsize: 4096 });
  assert.equal(big.status & 0x7f, 25, `killed by SIGXFSZ: status ${big.status}`);
  for (const bad of [{ as: -1 }, { cpu: 1.5 }, { nproc: 'many' }]) {
    assert.throws(() => native.spawn('true', ['true'], [], dir, 1000, 1000, bad as native.Limits), TypeError);
  }
});
