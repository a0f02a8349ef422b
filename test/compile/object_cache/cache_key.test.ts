// The object-cache key changes with every part that decides the compiler's answer, and only
// with those; the compiler's identity follows its driver, its cc1 and its version output.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { affectsOutput, cacheKey, KEY_FORMAT, type KeyInput } from '../../../src/compile/object_cache/cache_key';
import { CompilerIdentities } from '../../../src/compile/object_cache/compiler_identity';
import { tempDir } from '../../support/temp_dir';

const BASE: KeyInput = {
  compiler: 'c'.repeat(64),
  protocol: 2,
  argv: ['gcc', '-O2', '-c', 'distccd-input.i', '-o', 'distccd-output.o'],
  cwd: '/tmp',
  tmpDir: '/tmp',
  env: { PATH: '/usr/bin', LANG: 'C.UTF-8', HOME: '/root' },
  source: Buffer.from('int x;\n'),
};

test('cacheKey changes when any part of the request that decides the output changes', () => {
  const key = cacheKey(BASE);
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.equal(cacheKey({ ...BASE, env: { ...BASE.env }, argv: [...BASE.argv] }), key, 'same input, same key');
  const variants: Record<string, Partial<KeyInput>> = {
    compiler: { compiler: 'd'.repeat(64) },
    protocol: { protocol: 1 },
    flag: { argv: ['gcc', '-O1', '-c', 'distccd-input.i', '-o', 'distccd-output.o'] },
    define: { argv: ['gcc', '-DX', '-O2', '-c', 'distccd-input.i', '-o', 'distccd-output.o'] },
    'argument split': { argv: ['gcc', '-O2 -c', 'distccd-input.i', '-o', 'distccd-output.o'] },
    cwd: { cwd: '/home/u' },
    tmpDir: { tmpDir: '/var/tmp' },
    source: { source: Buffer.from('int y;\n') },
    'the same bytes as compressed source': { source: undefined, sourceLzo: Buffer.from('int x;\n') },
    'compressed source': { source: undefined, sourceLzo: Buffer.from('int y;\n') },
    LANG: { env: { ...BASE.env, LANG: 'de_DE.UTF-8' } },
    LC_MESSAGES: { env: { ...BASE.env, LC_MESSAGES: 'fr_FR' } },
    SOURCE_DATE_EPOCH: { env: { ...BASE.env, SOURCE_DATE_EPOCH: '1' } },
    GCC_COMPARE_DEBUG: { env: { ...BASE.env, GCC_COMPARE_DEBUG: '1' } },
    CPATH: { env: { ...BASE.env, CPATH: '/opt/include' } },
    'pump tree': { protocol: 3, source: undefined, files: [{ kind: 'file', name: '/p/t.c', body: Buffer.from('int x;\n') }] },
  };
  const seen = new Set([key]);
  for (const [what, change] of Object.entries(variants)) {
    const other = cacheKey({ ...BASE, ...change });
    assert.ok(!seen.has(other), `changing ${what} changes the key`);
    seen.add(other);
  }
  assert.equal(cacheKey({ ...BASE, env: { ...BASE.env, HOME: '/home/x', PATH: '/bin' } }), key, 'HOME and PATH do not reach the object');
  assert.equal(KEY_FORMAT, 'distkit-objcache-2');
});

test('cacheKey tells a pump tree apart when a name, a body, a link target or the order changes', () => {
  const a = { kind: 'file' as const, name: '/p/a.h', body: Buffer.from('A') };
  const b = { kind: 'file' as const, name: '/p/b.h', body: Buffer.from('B') };
  const l = { kind: 'link' as const, name: '/p/l.h', target: 'a.h' };
  const tree = (files: KeyInput['files']) => cacheKey({ ...BASE, protocol: 3, source: undefined, files });
  const keys = [
    tree([a, b, l]),
    tree([b, a, l]),
    tree([a, { ...b, name: '/p/c.h' }, l]),
    tree([a, { ...b, body: Buffer.from('b') }, l]),
    tree([a, b, { ...l, target: 'b.h' }]),
    tree([a, b]),
    // A name and a body that run together differently.
    tree([{ kind: 'file', name: '/p/a.hA', body: Buffer.alloc(0) }, b, l]),
  ];
  assert.equal(new Set(keys).size, keys.length);
});

test('affectsOutput names the locale, clock, GCC_ and include variables and leaves the rest out', () => {
  for (const name of ['LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'SOURCE_DATE_EPOCH', 'GCC_EXEC_PREFIX', 'COMPILER_PATH', 'CPATH', 'TZ']) assert.ok(affectsOutput(name), name);
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'DISTCC_SAVE_TEMPS', 'USER', '_DISTCC_SAFEGUARD']) assert.ok(!affectsOutput(name), name);
});

test('CompilerIdentities changes the identity when the driver, its version output or its cc1 changes', async (t) => {
  const root = tempDir(t, 'distkit-identity-');
  const bin = path.join(root, 'bin');
  const bdir = path.join(root, 'b');
  await fs.mkdir(bin);
  await fs.mkdir(bdir);
  await fs.copyFile(execFileSync('gcc', ['-print-prog-name=cc1'], { encoding: 'utf8' }).trim(), path.join(bdir, 'cc1'));
  const driver = (extra: string) => `#!/bin/sh\n${extra}\nexec gcc -B ${bdir}/ "$@"\n`;
  await fs.writeFile(path.join(bin, 'cc'), driver(''), { mode: 0o755 });
  const env = { PATH: `${bin}:/usr/bin:/bin` };
  const ids = new CompilerIdentities();
  const first = await ids.identify('cc', env, '/');
  assert.equal(await ids.identify('cc', env, '/'), first, 'stable while nothing changes');
  assert.equal(await new CompilerIdentities().identify('cc', env, '/'), first, 'the same in another process');
  await fs.appendFile(path.join(bdir, 'cc1'), Buffer.from([0]));
  const cc1Changed = await ids.identify('cc', env, '/');
  assert.notEqual(cc1Changed, first, 'a new cc1 is a new compiler');
  // Written through a new file (as a package upgrade does): a new inode, a new answer to -dumpfullversion.
  await fs.writeFile(path.join(root, 'cc.new'), driver('[ "$1" = -dumpfullversion ] && { echo 99.0; echo x86_64-linux-gnu; exit 0; }'), { mode: 0o755 });
  await fs.rename(path.join(root, 'cc.new'), path.join(bin, 'cc'));
  const versionChanged = await ids.identify('cc', env, '/');
  assert.notEqual(versionChanged, cc1Changed);
  assert.notEqual(versionChanged, first);
  await assert.rejects(ids.identify('no-such-compiler', env, '/'), /not found/);
});

test('CompilerIdentities remembers a compiler across instances in its memo directory and still sees a new cc1', async (t) => {
  const root = tempDir(t, 'distkit-identity-memo-');
  const bin = path.join(root, 'bin');
  const bdir = path.join(root, 'b');
  const memo = path.join(root, 'memo');
  for (const dir of [bin, bdir, memo]) await fs.mkdir(dir);
  await fs.copyFile(execFileSync('gcc', ['-print-prog-name=cc1'], { encoding: 'utf8' }).trim(), path.join(bdir, 'cc1'));
  const probes = path.join(root, 'probes');
  await fs.writeFile(path.join(bin, 'cc'), `#!/bin/sh\necho "$*" >> ${probes}\nexec gcc -B ${bdir}/ "$@"\n`, { mode: 0o755 });
  const env = { PATH: `${bin}:/usr/bin:/bin` };
  const count = async () => (await fs.readFile(probes, 'utf8')).split('\n').filter(Boolean).length;
  const first = await new CompilerIdentities({ memoDir: memo }).identify('cc', env, '/');
  const probed = await count();
  assert.ok(probed >= 4, 'the first instance asks the driver');
  assert.equal(await new CompilerIdentities({ memoDir: memo }).identify('cc', env, '/'), first, 'a second process finds the same identity');
  assert.equal(await count(), probed, 'without asking the driver again');
  assert.equal(await new CompilerIdentities().identify('cc', env, '/'), first, 'the same as without a memo');
  await fs.appendFile(path.join(bdir, 'cc1'), Buffer.from([0]));
  assert.notEqual(await new CompilerIdentities({ memoDir: memo }).identify('cc', env, '/'), first, 'a new cc1 is seen through the memo');
});

test('CompilerIdentities sees a driver put earlier in PATH and a link moved to another driver when it has the identity memoised', async (t) => {
  const root = tempDir(t, 'distkit-identity-path-');
  const [early, late, real] = ['early', 'late', 'real'].map((d) => path.join(root, d)) as [string, string, string];
  for (const dir of [early, late, real]) await fs.mkdir(dir);
  const driver = (version: string) => `#!/bin/sh\n[ "$1" = -dumpfullversion ] && { echo ${version}; echo x86_64-linux-gnu; exit 0; }\nexec gcc "$@"\n`;
  await fs.writeFile(path.join(real, 'cc-1'), driver('1.0'), { mode: 0o755 });
  await fs.writeFile(path.join(real, 'cc-2'), driver('2.0'), { mode: 0o755 });
  await fs.symlink(path.join(real, 'cc-1'), path.join(late, 'cc'));
  const env = { PATH: `${early}:${late}:/usr/bin:/bin` };
  const ids = new CompilerIdentities();
  const first = await ids.identify('cc', env, '/');
  assert.equal(await ids.identify('cc', env, '/'), first, 'stable while nothing changes');
  // `ln -sf`: the link now names the other driver.
  await fs.rm(path.join(late, 'cc'));
  await fs.symlink(path.join(real, 'cc-2'), path.join(late, 'cc'));
  const moved = await ids.identify('cc', env, '/');
  assert.notEqual(moved, first, 'a link moved to another driver is another compiler');
  assert.equal(moved, await new CompilerIdentities().identify('cc', env, '/'), 'the memo gives what a fresh look gives');
  await fs.copyFile(path.join(real, 'cc-1'), path.join(early, 'cc'));
  const shadowed = await ids.identify('cc', env, '/');
  assert.notEqual(shadowed, moved, 'a driver put earlier in PATH is the one run, and another compiler');
  assert.equal(shadowed, await new CompilerIdentities().identify('cc', env, '/'));
});

test('CompilerIdentities sees a driver put in a directory that PATH names twice when it has the identity memoised', async (t) => {
  const root = tempDir(t, 'distkit-identity-twice-');
  const [twice, late] = ['twice', 'late'].map((d) => path.join(root, d)) as [string, string];
  for (const dir of [twice, late]) await fs.mkdir(dir);
  const driver = (version: string) => `#!/bin/sh\n[ "$1" = -dumpfullversion ] && { echo ${version}; echo x86_64-linux-gnu; exit 0; }\nexec gcc "$@"\n`;
  await fs.writeFile(path.join(late, 'cc'), driver('1.0'), { mode: 0o755 });
  const env = { PATH: `${twice}:${twice}/:${late}:${twice}:/usr/bin` };
  const ids = new CompilerIdentities();
  const first = await ids.identify('cc', env, '/');
  assert.equal(await ids.identify('cc', env, '/'), first, 'stable while nothing changes');
  await fs.writeFile(path.join(twice, 'cc'), driver('2.0'), { mode: 0o755 });
  const shadowed = await ids.identify('cc', env, '/');
  assert.notEqual(shadowed, first, 'a driver put in the directory named twice, before the one found, is another compiler');
  assert.equal(shadowed, await new CompilerIdentities().identify('cc', env, '/'));
});
