// A compiler's sandbox mounts remembered across --inetd processes (compiler_mounts.ts with
// probe_cache.ts mountsMemory): a later process uses an earlier one's finding only while what it
// rests on is unchanged, only under the same check, and only from a file no one else could write.
// Each "process" is a real fresh node process: within one, findCompilerMounts memoises anyway.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mountsMemory } from '../../../src/compile/sandbox/probe_cache';

const MOUNTS = require.resolve('../../../src/compile/sandbox/compiler_mounts');
const CACHE = require.resolve('../../../src/compile/sandbox/probe_cache');

interface World {
  readonly dir: string;
  readonly bin: string;
  readonly runtime: string;
  /** Lines the compiler wrote: one per run (the mounts' probes run it). */
  readonly runs: () => Promise<number>;
}

/** A compiler outside /usr (a wrapper script that answers no probe), logging each run. */
async function world(t: { after: (fn: () => Promise<void>) => void }): Promise<World> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-mounts-')));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'bin');
  const runtime = path.join(dir, 'run');
  await Promise.all([fs.mkdir(bin), fs.mkdir(runtime)]);
  const log = path.join(dir, 'runs.log');
  await fs.writeFile(log, '');
  await fs.writeFile(path.join(bin, 'wrapcc'), `#!/bin/sh\necho run >> '${log}'\nexit 1\n`, { mode: 0o755 });
  return { dir, bin, runtime, runs: async () => (await fs.readFile(log, 'utf8')).split('\n').filter((l) => l !== '').length };
}

/** Runs findCompilerMounts for wrapcc in a fresh process with the memory of `key`; its mounts. */
function findInProcess(w: World, key = 'check-1'): { program: string; dirs: string[]; links: string[][] } {
  const script = `
    const { findCompilerMounts } = require(${JSON.stringify(MOUNTS)});
    const { mountsMemory } = require(${JSON.stringify(CACHE)});
    const memory = mountsMemory(${JSON.stringify(w.runtime)}, ${JSON.stringify(key)});
    findCompilerMounts('wrapcc', { PATH: ${JSON.stringify(`${w.bin}:/usr/bin:/bin`)} }, { wholeUsr: true, memory })
      .then((m) => process.stdout.write(JSON.stringify(m)));`;
  const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as { program: string; dirs: string[]; links: string[][] };
}

const stored = (w: World): string => path.join(w.runtime, `distkit-sandbox-mounts-${process.geteuid!()}`, 'mounts.json');

test('findCompilerMounts uses an earlier process\'s finding while its evidence holds and finds again when the compiler is replaced', async (t) => {
  const w = await world(t);
  const first = findInProcess(w);
  assert.equal(first.program, path.join(w.bin, 'wrapcc'));
  assert.ok(first.dirs.includes(w.bin), JSON.stringify(first.dirs));
  const probed = await w.runs();
  assert.ok(probed >= 1, 'the first process probed the compiler');
  assert.deepEqual(findInProcess(w), first, 'the second process gets the same mounts');
  assert.equal(await w.runs(), probed, 'without running the compiler');
  // An upgrade: a new file in place of the old.
  await fs.rm(path.join(w.bin, 'wrapcc'));
  await fs.writeFile(path.join(w.bin, 'wrapcc'), `#!/bin/sh\necho run >> '${path.join(w.dir, 'runs.log')}'\nexit 2\n`, { mode: 0o755 });
  assert.deepEqual(findInProcess(w), first);
  assert.ok(await w.runs() > probed, 'the replaced compiler was probed again');
});

test('findCompilerMounts finds again when a directory it looked at changes', async (t) => {
  const w = await world(t);
  findInProcess(w);
  const probed = await w.runs();
  findInProcess(w);
  assert.equal(await w.runs(), probed);
  await fs.writeFile(path.join(w.bin, 'newcomer'), '');
  findInProcess(w);
  assert.ok(await w.runs() > probed, 'a file added to the compiler\'s directory');
});

test('findCompilerMounts ignores a finding stored under another check, or in a file others could write', async (t) => {
  const w = await world(t);
  findInProcess(w, 'check-1');
  let probed = await w.runs();
  findInProcess(w, 'check-2');
  assert.ok(await w.runs() > probed, 'another check (another mount table, user, kernel...)');
  probed = await w.runs();
  findInProcess(w, 'check-2');
  assert.equal(await w.runs(), probed, 'remembered under check-2 now');
  await fs.chmod(stored(w), 0o666);
  findInProcess(w, 'check-2');
  assert.ok(await w.runs() > probed, 'a file writable by others is not trusted');
  probed = await w.runs();
  await fs.chmod(path.dirname(stored(w)), 0o777);
  findInProcess(w, 'check-2');
  assert.ok(await w.runs() > probed, 'nor one in a directory writable by others');
});

test('mountsMemory keeps findings in a directory it hands to the user a root start will serve as', { skip: process.geteuid?.() !== 0 && 'needs root' }, async (t) => {
  const runtime = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-mounts-root-'));
  t.after(() => fs.rm(runtime, { recursive: true, force: true }));
  const memory = mountsMemory(runtime, 'check-1', { uid: 65534, gid: 65534 });
  assert.notEqual(memory, undefined);
  const st = await fs.lstat(path.join(runtime, 'distkit-sandbox-mounts-65534'));
  assert.equal(st.isDirectory(), true);
  assert.equal(st.uid, 65534, 'the serving user can write its findings there after the drop');
  assert.equal(st.mode & 0o022, 0);
});

test('findCompilerMounts does not remember a finding whose probe timed out (a loaded machine) and finds it again in the next process', async (t) => {
  const w = await world(t);
  // Slow once: the first probe gives up on it (3 s) and takes it for a wrapper that answers nothing.
  const marker = path.join(w.dir, 'slow-once');
  await fs.writeFile(path.join(w.bin, 'wrapcc'), `#!/bin/sh\nif [ ! -e '${marker}' ]; then : > '${marker}'; exec sleep 6; fi\necho run >> '${path.join(w.dir, 'runs.log')}'\nexit 1\n`, { mode: 0o755 });
  findInProcess(w);
  assert.equal(await w.runs(), 0, 'the first process only met the slow probe');
  findInProcess(w);
  const probed = await w.runs();
  assert.ok(probed >= 1, 'the next process probed again: the cut-short finding was not stored');
  findInProcess(w);
  assert.equal(await w.runs(), probed, 'a whole finding is remembered');
});
