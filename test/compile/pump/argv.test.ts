import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { scanArgs, type ScannedArgs } from '../../../src/compile/args';
import { rerootArgs } from '../../../src/compile/pump/argv';
import { cleanDepfile } from '../../../src/compile/pump/depfile';
import { PumpTree } from '../../../src/compile/pump/tree';

const run = promisify(execFile);
const ROOT = '/tmp/distccd-pump-X1';
const PATHS = { root: ROOT, output: '/tmp/distccd_o1.o', deps: '/tmp/distcc_d1.deps' };

function scanned(argv: string[]): ScannedArgs {
  const r = scanArgs(argv);
  if (!r.ok) assert.fail(r.reason);
  return r.value;
}

test('rerootArgs replaces the output and appends -MMD -MF when the client asked for no deps', () => {
  const r = rerootArgs(scanned(['gcc', '-c', 'hello.c', '-o', 'obj/hello.o']), PATHS);
  assert.deepEqual(r.argv, ['gcc', '-c', 'hello.c', '-o', '/tmp/distccd_o1.o', '-MMD', '-MF', '/tmp/distcc_d1.deps']);
  assert.equal(r.mtTarget, undefined);
});

// What the real client sends: it appends `-MT <output>` when the user set no target with a
// separate -MT or -MQ (distcc src/compile.c), and the server must take that one out again.
const MT_CASES: Array<{ user: string[]; appended: string[]; kept: string[]; mtTarget: string | undefined }> = [
  { user: ['-MT', 'target'], appended: [], kept: [], mtTarget: 'target' },
  { user: ['-MTtarget'], appended: ['-MT', 'a.o'], kept: ['-MTtarget'], mtTarget: 'a.o' },
  { user: ['-MQ', 'target'], appended: [], kept: ['-MQ', 'target'], mtTarget: undefined },
  { user: ['-MQtarget'], appended: ['-MT', 'a.o'], kept: ['-MQtarget'], mtTarget: 'a.o' },
  { user: ['-MT', 'first.o', '-MT', 'second.o'], appended: [], kept: ['-MT', 'first.o', '-MT', 'second.o'], mtTarget: undefined },
  { user: ['-MT', 'first.o', '-MQ', 'second.o'], appended: [], kept: ['-MT', 'first.o', '-MQ', 'second.o'], mtTarget: undefined },
  { user: ['-MTfirst.o', '-MTsecond.o'], appended: ['-MT', 'a.o'], kept: ['-MTfirst.o', '-MTsecond.o'], mtTarget: 'a.o' },
  { user: ['-MTfirst.o', '-MT', 'second.o'], appended: [], kept: ['-MTfirst.o', '-MT', 'second.o'], mtTarget: undefined },
  { user: ['-MQfirst.o', '-MT', 'second.o'], appended: [], kept: ['-MQfirst.o', '-MT', 'second.o'], mtTarget: undefined },
];

for (const c of MT_CASES) {
  test(`rerootArgs gives gcc the user's targets only when the user wrote ${c.user.join(' ')}`, () => {
    // The client puts its -MT after the user's arguments (dcc_argv_append).
    const r = rerootArgs(scanned(['gcc', '-MD', '-MF', 'a.d', ...c.user, '-c', 'a.c', '-o', 'a.o', ...c.appended]), PATHS);
    assert.deepEqual(r.argv, ['gcc', '-MD', '-MF', 'a.d', ...c.kept, '-c', 'a.c', '-o', '/tmp/distccd_o1.o', '-MF', '/tmp/distcc_d1.deps']);
    assert.equal(r.mtTarget, c.mtTarget);
  });
}

test('rerootArgs prefixes the root to absolute include paths when joined or separate', () => {
  const argv = ['gcc', '-I/usr/local/include', '-I', '/opt/inc', '-Irel', '-I', 'rel2', '-include', '/p/pre.h', '-imacros/m.h',
    '-idirafter', '/after', '-iprefix/pre/', '-iwithprefix', '/wp', '-iwithprefixbefore/wpb', '-isystem', '/sys', '-iquote/q',
    '-I//double', '-c', '/home/u/src/x.c'];
  const r = rerootArgs(scanned(argv), PATHS);
  assert.deepEqual(r.argv, ['gcc', `-I${ROOT}/usr/local/include`, '-I', `${ROOT}/opt/inc`, '-Irel', '-I', 'rel2', '-include', `${ROOT}/p/pre.h`,
    `-imacros${ROOT}/m.h`, '-idirafter', `${ROOT}/after`, `-iprefix${ROOT}/pre/`, '-iwithprefix', `${ROOT}/wp`, `-iwithprefixbefore${ROOT}/wpb`,
    '-isystem', `${ROOT}/sys`, `-iquote${ROOT}/q`, `-I${ROOT}/double`, '-c', `${ROOT}/home/u/src/x.c`, '-o', '/tmp/distccd_o1.o', '-MMD', '-MF', '/tmp/distcc_d1.deps']);
});

test('rerootArgs leaves a dangling include option alone when it ends the command', () => {
  const r = rerootArgs(scanned(['gcc', '-c', 'x.c', '-I']), PATHS);
  assert.deepEqual(r.argv.slice(0, 4), ['gcc', '-c', 'x.c', '-I']);
});

test('rerootArgs turns a bare .o output into -o temp when the client named it without -o', () => {
  const r = rerootArgs(scanned(['gcc', 'out/x.o', '-c', 'x.c']), PATHS);
  assert.deepEqual(r.argv, ['gcc', '-c', 'x.c', '-o', '/tmp/distccd_o1.o', '-MMD', '-MF', '/tmp/distcc_d1.deps']);
});

test('rerootArgs refuses a root when it is relative or ends in a slash', () => {
  assert.throws(() => rerootArgs(scanned(['gcc', '-c', 'x.c']), { ...PATHS, root: 'tmp/x' }), RangeError);
  assert.throws(() => rerootArgs(scanned(['gcc', '-c', 'x.c']), { ...PATHS, root: '/tmp/x/' }), RangeError);
});

test('cleanDepfile retargets the server object and strips every root occurrence when given gcc output', () => {
  const d = `/tmp/distccd_o1.o: ${ROOT}/home/u/x.c ${ROOT}/usr/include/stdio.h \\\n ${ROOT}/usr/include/${ROOT}x.h rel.h\n`;
  const out = cleanDepfile(Buffer.from(d), { root: ROOT, serverOutput: '/tmp/distccd_o1.o', clientTarget: 'obj/x.o' });
  assert.equal(out.toString(), 'obj/x.o: /home/u/x.c /usr/include/stdio.h \\\n /usr/include/x.h rel.h\n');
  assert.throws(() => cleanDepfile(Buffer.from(d), { root: '/', serverOutput: 'a', clientTarget: 'b' }), RangeError);
  const latin = Buffer.from([0x78, 0xe9, 0x3a, 0x20, 0x61, 0x0a]);
  assert.deepEqual(cleanDepfile(latin, { root: ROOT, serverOutput: 'zz', clientTarget: 'y' }), latin);
});

test('rerootArgs and cleanDepfile give the client a clean .d when gcc really compiles in the tree', async (t) => {
  const tree = await PumpTree.create();
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-pumpargv-'));
  t.after(async () => { await tree.remove(); await fs.rm(scratch, { recursive: true, force: true }); });
  const cwd = await tree.makeCwd('/home/u/proj');
  await tree.writeFile('/home/u/proj/main.c', Buffer.from('#include "local.h"\n#include <sys_like.h>\nint main(void) { return LOCAL + SYS; }\n'));
  await tree.writeFile('/home/u/proj/local.h', Buffer.from('#define LOCAL 1\n'));
  await tree.writeFile('/opt/sdk/include/sys_like.h', Buffer.from('#define SYS 2\n'));
  const paths = { root: tree.root, output: path.join(scratch, 'server.o'), deps: path.join(scratch, 'server.deps') };
  const r = rerootArgs(scanned(['gcc', '-MD', '-MT', 'build/main.o', '-I/opt/sdk/include', '-c', '/home/u/proj/main.c', '-o', 'build/main.o']), paths);
  await run('gcc', r.argv.slice(1), { cwd });
  assert.ok((await fs.stat(paths.output)).size > 0);
  const raw = await fs.readFile(paths.deps);
  assert.ok(raw.includes(tree.root), 'gcc wrote tree paths before cleaning');
  const clean = cleanDepfile(raw, { root: tree.root, serverOutput: paths.output, clientTarget: r.mtTarget ?? 'build/main.o' }).toString();
  assert.ok(!clean.includes(tree.root), clean);
  assert.ok(!clean.includes(scratch), clean);
  assert.match(clean, /^build\/main\.o: \\\n \/home\/u\/proj\/main\.c /);
  assert.match(clean, /\/opt\/sdk\/include\/sys_like\.h/);
  assert.match(clean, /local\.h/);
});

test('rerootArgs re-roots --sysroot and -isysroot like -I, and leaves every path alone when the sandbox shows the tree at its own paths', () => {
  const argv = ['gcc', '--sysroot=/opt/sdk', '--sysroot', '/opt/sdk2', '-isysroot', '/opt/sdk3', '-isysroot/opt/sdk4', '-I/inc', '-c', '/home/u/x.c'];
  assert.deepEqual(rerootArgs(scanned(argv), PATHS).argv.slice(0, 10), ['gcc', `--sysroot=${ROOT}/opt/sdk`, '--sysroot', `${ROOT}/opt/sdk2`, '-isysroot', `${ROOT}/opt/sdk3`,
    `-isysroot${ROOT}/opt/sdk4`, `-I${ROOT}/inc`, '-c', `${ROOT}/home/u/x.c`]);
  const inSandbox = rerootArgs(scanned(argv), { ...PATHS, root: null });
  assert.deepEqual(inSandbox.argv, [...argv, '-o', PATHS.output, '-MMD', '-MF', PATHS.deps]);
});
