// On a filesystem without O_TMPFILE (FUSE here: bindfs, as sshfs or any other FUSE TMPDIR would
// be), the compiler's stdout and stderr go to named 0600 files that distccd unlinks the moment
// it has opened them. The real client must still get the compiler's messages and its object, in
// protocols 1 and 2, and nothing may be left in TMPDIR.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clientEnv, makeMasqueradeDir, run, startDistccd } from '../support/distccd_harness';
import { settledListing } from '../support/settled_listing';

// __O_TMPFILE | O_DIRECTORY, as src/compile/compiler_process.ts opens its captures.
const O_TMPFILE = 0o20000000 | fs.constants.O_DIRECTORY;

/**
 * A temp dir holding `backing` and a bindfs view of it (a FUSE filesystem) on `fuse`. Its cleanup
 * is the test's first: after hooks run in order, and the view must be gone (a lazy unmount, which
 * a process still inside cannot stop) before anything removes the tree.
 */
function bindfsTree(t: { after: (fn: () => void) => void }): { root: string; backing: string; fuse: string } {
  const which = spawnSync('sh', ['-c', 'command -v bindfs'], { encoding: 'utf8' });
  assert.equal(which.status, 0, 'bindfs is missing: it is in scripts/system-packages.txt (apt-get install bindfs)');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'distkit-tmpfile-'));
  const backing = path.join(root, 'backing');
  const fuse = path.join(root, 'fuse-tmp');
  fs.mkdirSync(backing);
  fs.mkdirSync(fuse);
  let mounted = false;
  t.after(() => {
    if (mounted) spawnSync('umount', ['-l', fuse]);
    fs.rmSync(root, { recursive: true, force: true });
  });
  const r = spawnSync('bindfs', [backing, fuse], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `bindfs ${backing} ${fuse}: ${r.stderr}`);
  mounted = true;
  return { root, backing, fuse };
}

test('distccd answers the real client through named capture files where TMPDIR has no O_TMPFILE', { skip: process.getuid?.() !== 0 && 'mounting a FUSE filesystem needs root' }, async (t) => {
  const { root, backing, fuse: tmp } = bindfsTree(t);
  const src = path.join(root, 'src');
  fs.mkdirSync(src);
  // Node names errno 95 ENOTSUP (EOPNOTSUPP on Linux is the same number).
  assert.throws(() => fs.closeSync(fs.openSync(tmp, fs.constants.O_RDWR | O_TMPFILE, 0o600)), /ENOTSUP|EOPNOTSUPP|EISDIR/, 'the FUSE TMPDIR refuses O_TMPFILE, so the fallback is what runs');

  fs.writeFileSync(path.join(src, 'warn.c'), 'int f(void) { int unused; return 1; }\n');
  fs.writeFileSync(path.join(src, 'bad.c'), 'int g(void) { return 1 }\n');
  const masq = await makeMasqueradeDir(path.join(root, 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp } });

  for (const suffix of ['', ',lzo']) {
    const env = clientEnv(src, `127.0.0.1:${d.port}/4${suffix}`);
    const warned = await run('distcc', ['gcc', '-Wall', '-c', 'warn.c', '-o', 'warn.o'], { cwd: src, env });
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /warn\.c:1:\d+: warning: unused variable .unused./, 'the compiler\'s stderr reached the client');
    const local = await run('gcc', ['-Wall', '-c', 'warn.c', '-o', 'warn.local.o'], { cwd: src });
    assert.equal(local.code, 0, local.stderr);
    assert.deepEqual(fs.readFileSync(path.join(src, 'warn.o')), fs.readFileSync(path.join(src, 'warn.local.o')));

    const failed = await run('distcc', ['gcc', '-c', 'bad.c', '-o', 'bad.o'], { cwd: src, env });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /bad\.c:1:\d+: error: expected .;./);
  }
  await d.waitForCount(/ COMPILE_(OK|ERROR) /, 4);
  assert.deepEqual(await settledListing(backing), [], 'no capture or temp file is left in TMPDIR');
});
