import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PumpTree } from '../../../src/compile/pump/tree';
import { DistkitError } from '../../../src/errors';

/** A tree inside a private parent dir, so an escape would land in `outside` where the test can see it. */
async function setup(t: TestContext): Promise<{ tree: PumpTree; outside: string }> {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-tree-'));
  t.after(() => fs.rm(parent, { recursive: true, force: true }));
  const outside = path.join(parent, 'outside');
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'victim'), 'precious');
  const tree = await PumpTree.create({ tmpDir: parent });
  return { tree, outside };
}

function isUnsafe(pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => e instanceof DistkitError && e.code === 'unsafe-path' && pattern.test(e.message);
}

async function assertOutsideUntouched(outside: string): Promise<void> {
  assert.deepEqual((await fs.readdir(outside)).sort(), ['victim']);
  assert.equal(await fs.readFile(path.join(outside, 'victim'), 'utf8'), 'precious');
}

test('PumpTree writes files under root plus NAME when the names are absolute', async (t) => {
  const { tree } = await setup(t);
  const cwd = await tree.makeCwd('/home/u/proj');
  assert.equal(cwd, path.join(tree.root, 'home/u/proj'));
  assert.ok((await fs.stat(cwd)).isDirectory());
  const at = await tree.writeFile('/usr/include/stdio.h', Buffer.from('int printf();\n'));
  assert.equal(at, path.join(tree.root, 'usr/include/stdio.h'));
  assert.equal(await fs.readFile(at, 'utf8'), 'int printf();\n');
  assert.equal((await fs.stat(at)).mode & 0o777, 0o644);
  await tree.writeFile('/home/u/proj/sub/dir/forcing_technique_271828', new Uint8Array(0));
  assert.ok((await fs.stat(path.join(cwd, 'sub/dir'))).isDirectory());
  await tree.writeFile('/usr/include/stdio.h', Buffer.from('v2'));
  assert.equal(await fs.readFile(at, 'utf8'), 'v2');
  await tree.remove();
  await assert.rejects(fs.stat(tree.root), { code: 'ENOENT' });
});

test('PumpTree accepts relative links when they stay inside the root', async (t) => {
  const { tree } = await setup(t);
  await tree.writeFile('/usr/lib/gcc/x86_64-linux-gnu/12/include/stddef.h', Buffer.from('typedef int x;'));
  // The link sits in <root>/usr/local: ".." is <root>/usr, "../.." is the root.
  await tree.makeLink('/usr/local/include', '../../usr/lib/gcc/x86_64-linux-gnu/12/include');
  assert.equal(await fs.readFile(path.join(tree.root, 'usr/local/include/stddef.h'), 'utf8'), 'typedef int x;');
  await tree.writeFile('/usr/local/include/more.h', Buffer.from('ok'));
  assert.equal(await fs.readFile(path.join(tree.root, 'usr/lib/gcc/x86_64-linux-gnu/12/include/more.h'), 'utf8'), 'ok');
  await tree.verify();
});

test('PumpTree prepends the root when a LINK target is absolute', async (t) => {
  const { tree } = await setup(t);
  await tree.writeFile('/opt/real/a.h', Buffer.from('A'));
  const at = await tree.makeLink('/opt/alias', '/opt/real');
  assert.equal(await fs.readlink(at), tree.root + '/opt/real');
  assert.equal(await fs.readFile(path.join(tree.root, 'opt/alias/a.h'), 'utf8'), 'A');
  await tree.makeLink('/lib', '/etc/../usr/lib'); // resolves to <root>/usr/lib, dangling is fine
});

test('PumpTree refuses NAMEs that climb out of the root when they hold ".."', async (t) => {
  const { tree, outside } = await setup(t);
  const up = path.relative(tree.root, outside).split('/').filter((c) => c === '..').length;
  const escape = '/' + '../'.repeat(up) + 'outside/victim';
  await assert.rejects(tree.writeFile(escape, Buffer.from('pwned')), isUnsafe(/climbs above/));
  await assert.rejects(tree.writeFile('/a/../../victim', Buffer.from('x')), isUnsafe(/climbs above/));
  await assert.rejects(tree.makeLink('/../x', 'y'), isUnsafe(/climbs above/));
  await assert.rejects(tree.makeCwd('/../../tmp'), isUnsafe(/climbs above/));
  await tree.writeFile('/a/b/../c.h', Buffer.from('inside'));
  assert.equal(await fs.readFile(path.join(tree.root, 'a/c.h'), 'utf8'), 'inside');
  await assertOutsideUntouched(outside);
});

test('PumpTree refuses relative, empty and NUL names when they arrive', async (t) => {
  const { tree } = await setup(t);
  await assert.rejects(tree.writeFile('relative.h', Buffer.from('')), isUnsafe(/not an absolute path/));
  await assert.rejects(tree.writeFile('', Buffer.from('')), isUnsafe(/not an absolute path/));
  await assert.rejects(tree.writeFile('/', Buffer.from('')), isUnsafe(/root itself/));
  await assert.rejects(tree.writeFile('/a\0b', Buffer.from('')), isUnsafe(/NUL/));
  await assert.rejects(tree.makeLink('/x', ''), isUnsafe(/empty/));
  await assert.rejects(tree.makeCwd('home'), isUnsafe(/not an absolute path/));
  await assert.rejects(tree.writeFile('/' + 'a'.repeat(5000), Buffer.from('')), isUnsafe(/longer than/));
});

test('PumpTree refuses a link whose relative target leaves the root', async (t) => {
  const { tree, outside } = await setup(t);
  await assert.rejects(tree.makeLink('/usr/include', '../../../../../../../../../../tmp'), isUnsafe(/climbs above/));
  await assert.rejects(tree.makeLink('/esc', '..'), isUnsafe(/climbs above/));
  await assert.rejects(tree.makeLink('/d/esc', '../..'), isUnsafe(/climbs above/));
  await assert.rejects(fs.lstat(path.join(tree.root, 'usr/include')), { code: 'ENOENT' });
  await assertOutsideUntouched(outside);
});

test('PumpTree refuses to write a FILE through a LINK when the link was made first', async (t) => {
  const { tree, outside } = await setup(t);
  await tree.writeFile('/in/x.h', Buffer.from('x'));
  await tree.makeLink('/in/l.h', 'x.h');
  await assert.rejects(tree.writeFile('/in/l.h', Buffer.from('through')), isUnsafe(/already a link/));
  assert.equal(await fs.readFile(path.join(tree.root, 'in/x.h'), 'utf8'), 'x');
  await assert.rejects(tree.makeLink('/in/l.h', 'x.h'), isUnsafe(/already exists/));
  await assert.rejects(tree.makeLink('/in/x.h', 'y.h'), isUnsafe(/already exists/));
  await assertOutsideUntouched(outside);
});

test('PumpTree refuses a link that a later link turns into an escape when verify runs', async (t) => {
  const { tree, outside } = await setup(t);
  // Accepted while a/b does not exist: lexically <root>/a/b/.. is <root>/a.
  await tree.makeLink('/c', 'a/b/..');
  // <root>/a/b -> ".." from <root>/a: the root itself, which real pump traffic also reaches.
  await tree.makeLink('/a/b', '..');
  // Now <root>/c is <root>/.. : the parent of the tree.
  await assert.rejects(tree.verify(), isUnsafe(/climbs above/));
  // And a write through the changed path is refused on its own.
  await assert.rejects(tree.writeFile('/c/outside/victim', Buffer.from('pwned')), isUnsafe(/climbs above/));
  await assertOutsideUntouched(outside);
});

test('PumpTree refuses a symlink it did not make when a path runs into it', async (t) => {
  const { tree, outside } = await setup(t);
  await fs.symlink(outside, path.join(tree.root, 'planted'));
  await assert.rejects(tree.writeFile('/planted/victim', Buffer.from('pwned')), isUnsafe(/leaves the job tree/));
  await assertOutsideUntouched(outside);
});

test('PumpTree refuses link loops and files used as directories when it walks a path', async (t) => {
  const { tree } = await setup(t);
  await tree.makeLink('/loop1', 'loop2');
  await tree.makeLink('/loop2', 'loop1');
  await assert.rejects(tree.writeFile('/loop1/x.h', Buffer.from('')), isUnsafe(/more than 40 links/));
  await tree.writeFile('/file.h', Buffer.from(''));
  await assert.rejects(tree.writeFile('/file.h/x.h', Buffer.from('')), isUnsafe(/is a file, not a directory/));
  await tree.makeCwd('/src');
  await assert.rejects(tree.writeFile('/src', Buffer.from('')), isUnsafe(/already a directory/));
});

/** The include server's link for a default system dir: 20 + depth '../' then the dir itself. */
function mirrorTarget(dir: string): string {
  return '../'.repeat(20 + dir.split('/').length - 1) + dir.slice(1);
}

test('PumpTree accepts the include server system mirror link when it names the server dir itself', async (t) => {
  const { tree } = await setup(t);
  assert.equal(mirrorTarget('/usr/include'), '../'.repeat(22) + 'usr/include');
  const at = await tree.makeLink('/usr/include', mirrorTarget('/usr/include'));
  assert.equal(await fs.readlink(at), mirrorTarget('/usr/include'));
  assert.equal(
    await fs.readFile(path.join(tree.root, 'usr/include/stdio.h'), 'utf8'),
    await fs.readFile('/usr/include/stdio.h', 'utf8'),
    'the link reads the server copy, as gcc -I<root>/usr/include does',
  );
  await tree.makeLink('/usr/lib/gcc/x86_64-linux-gnu/12/include', mirrorTarget('/usr/lib/gcc/x86_64-linux-gnu/12/include'));
  await tree.verify();
});

test('PumpTree refuses to write through a system mirror link when a NAME runs into it', async (t) => {
  const { tree, outside } = await setup(t);
  const rel = path.relative('/', outside);
  await tree.makeLink(outside, '../'.repeat(30) + rel);
  await assert.rejects(tree.writeFile(`${outside}/victim`, Buffer.from('pwned')), isUnsafe(/climbs above/));
  await assert.rejects(tree.writeFile(`${outside}/new.h`, Buffer.from('pwned')), isUnsafe(/climbs above/));
  await assert.rejects(tree.makeLink(`${outside}/l`, 'victim'), isUnsafe(/climbs above/));
  await assert.rejects(tree.makeLink('/via', `${outside.slice(1)}/victim`), isUnsafe(/climbs above/));
  await assertOutsideUntouched(outside);
});

test('PumpTree refuses a mirror-like link when it names another dir or stops short of the server root', async (t) => {
  const { tree } = await setup(t);
  await assert.rejects(tree.makeLink('/usr/include', '../'.repeat(22) + 'etc'), isUnsafe(/climbs above/));
  const depth = tree.root.split('/').length - 1; // components of the root itself
  // Enough to leave the tree but not to reach "/": it would land in an ancestor of the root.
  await assert.rejects(tree.makeLink('/usr/include', '../'.repeat(depth) + 'usr/include'), isUnsafe(/climbs above/));
  await assert.rejects(tree.makeLink('/a/../usr/include', '../'.repeat(30) + 'usr/include'), isUnsafe(/./));
});
