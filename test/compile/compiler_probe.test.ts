import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveProgram } from '../../src/compile/compiler_probe';

test('resolveProgram finds the first executable regular file on PATH as execvp does, and names every directory it searched', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'distkit-resolve-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = (name: string): string => {
    const d = path.join(root, name);
    fs.mkdirSync(d);
    return d;
  };
  const missing = path.join(root, 'missing');
  const asDir = dir('as-dir');
  fs.mkdirSync(path.join(asDir, 'cc')); // a directory of that name is no program
  const plain = dir('plain');
  fs.writeFileSync(path.join(plain, 'cc'), 'not executable\n', { mode: 0o644 });
  const linked = dir('linked');
  const real = dir('real');
  fs.writeFileSync(path.join(real, 'cc'), '#!/bin/sh\n', { mode: 0o755 });
  fs.symlinkSync(path.join(real, 'cc'), path.join(linked, 'cc')); // found as the link, not its target
  const later = dir('later');
  fs.writeFileSync(path.join(later, 'cc'), '#!/bin/sh\n', { mode: 0o755 });

  const seen = new Set<string>();
  const searchPath = [missing, asDir, plain, asDir, linked, later].join(':');
  assert.equal(resolveProgram('cc', searchPath, { seen }), path.join(linked, 'cc'));
  assert.deepEqual([...seen], [missing, asDir, plain, linked], 'each directory tried up to the find, and none after it');

  const none = new Set<string>();
  assert.equal(resolveProgram('cc', [missing, asDir, plain].join(':'), { seen: none }), undefined);
  assert.deepEqual([...none], [missing, asDir, plain]);

  // A name with a slash is itself; a relative one is taken from cwd.
  assert.equal(resolveProgram('./cc', '', { cwd: later }), path.join(later, 'cc'));
  assert.equal(resolveProgram(path.join(plain, 'cc'), '/usr/bin'), undefined);
  assert.equal(resolveProgram('cc', 'real', { cwd: root }), path.join(real, 'cc'));
});
