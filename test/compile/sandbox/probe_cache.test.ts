// The sandbox check remembered across --inetd processes (src/compile/sandbox/probe_cache.ts): a
// pass is found again only under the same key, and only in a file no one else could have written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { probeKey, readProbe, writeProbe } from '../../../src/compile/sandbox/probe_cache';

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-probe-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const stored = (dir: string): string => path.join(dir, `distkit-sandbox-check-${process.geteuid!()}`);

test('readProbe finds a stored pass under its own key and under no other', async (t) => {
  const dir = await scratch(t);
  const key = probeKey('/usr/bin/bwrap', ['as=1000:1000']);
  assert.equal(readProbe(dir, key), undefined, 'nothing stored yet');
  writeProbe(dir, key, { proc: false, net: true });
  assert.deepEqual(readProbe(dir, key), { proc: false, net: true });
  assert.equal(readProbe(dir, probeKey('/usr/bin/bwrap', ['as=1001:1001'])), undefined, 'another user');
  assert.equal(readProbe(dir, probeKey('/bin/false', ['as=1000:1000'])), undefined, 'another bwrap');
  assert.deepEqual(await fs.readdir(dir), [path.basename(stored(dir))], 'no temporary file left');
});

test('readProbe remembers that jobs run in the one-shot mode when the check found it works', async (t) => {
  const dir = await scratch(t);
  const key = probeKey('/usr/bin/bwrap', ['as=1000:1000', 'one-shot=1:2:3']);
  writeProbe(dir, key, { proc: true, net: true, oneShot: true });
  assert.deepEqual(readProbe(dir, key), { proc: true, net: true, oneShot: true });
  writeProbe(dir, key, { proc: true, net: false, oneShot: false });
  assert.deepEqual(readProbe(dir, key), { proc: true, net: false }, 'bwrap: no one-shot said');
});

test('probeKey changes when bwrap\'s file is replaced', async (t) => {
  const dir = await scratch(t);
  const bwrap = path.join(dir, 'bwrap');
  await fs.copyFile('/bin/true', bwrap);
  const before = probeKey(bwrap, []);
  assert.equal(probeKey(bwrap, []), before, 'stable while nothing changes');
  await fs.rm(bwrap);
  await fs.copyFile('/bin/false', bwrap);
  assert.notEqual(probeKey(bwrap, []), before);
});

test('readProbe ignores a stored pass that others could write, or that is a link', async (t) => {
  const dir = await scratch(t);
  const key = probeKey('/usr/bin/bwrap', []);
  writeProbe(dir, key, { proc: true, net: true });
  await fs.chmod(stored(dir), 0o666);
  assert.equal(readProbe(dir, key), undefined, 'writable by others');
  await fs.chmod(stored(dir), 0o644);
  assert.deepEqual(readProbe(dir, key), { proc: true, net: true });
  await fs.rename(stored(dir), path.join(dir, 'elsewhere'));
  await fs.symlink(path.join(dir, 'elsewhere'), stored(dir));
  assert.equal(readProbe(dir, key), undefined, 'a symlink');
  await fs.rm(stored(dir));
  await fs.writeFile(stored(dir), `{"key":${JSON.stringify(key)},"proc":true,"net":true}`, { mode: 0o644 });
  assert.equal(readProbe(dir, key), undefined, 'the old JSON format');
  await fs.writeFile(stored(dir), Buffer.from(`distkit-sandbox-check 1 3\n${key}x`, 'latin1'), { mode: 0o644 });
  assert.equal(readProbe(dir, key), undefined, 'a longer key');
  await fs.writeFile(stored(dir), Buffer.from(`distkit-sandbox-check 1 3\n${key.slice(0, -1)}`, 'latin1'), { mode: 0o644 });
  assert.equal(readProbe(dir, key), undefined, 'a shorter key');
  await fs.writeFile(stored(dir), Buffer.from(`distkit-sandbox-check 1 3\n${key}`, 'latin1'), { mode: 0o644 });
  assert.deepEqual(readProbe(dir, key), { proc: true, net: true }, 'the key byte for byte');
});

test('probeKey is the same in two alike namespaces and differs in another mount table', async () => {
  // As systemd makes them for each process of distccd-accept@.service (PrivateUsers=,
  // PrivateMounts=, PrivateNetwork=, PrivateIPC=, PrivateDevices=): new namespaces, alike content.
  const keyIn = (setup: string): string => {
    const script = `${setup} && exec "$0" -e 'process.stdout.write(require(process.argv[1]).probeKey("/usr/bin/bwrap", []))' "$1"`;
    const out = spawnSync('unshare', ['--user', '--map-root-user', '--mount', '--net', '--ipc', 'sh', '-c', script, process.execPath, require.resolve('../../../src/compile/sandbox/probe_cache')], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    return out.stdout;
  };
  const devTmpfs = 'mount -t tmpfs -o size=64k tmpfs /mnt';
  const first = keyIn(devTmpfs);
  assert.match(first, /\/mnt \S+ - tmpfs /, 'the mount table is part of the key');
  assert.equal(keyIn(devTmpfs), first, 'a second alike process (its own tmpfs, namespaces)');
  assert.notEqual(keyIn('mount -t tmpfs -o size=64k,ro tmpfs /mnt'), first, 'a read-only mount');
  assert.notEqual(keyIn('true'), first, 'one mount fewer');
});
