import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { checkCompiler, commandListFromEnv, readCommandList, type CompilerPolicy } from '../../src/compile/allowlist';
import { DistkitError } from '../../src/errors';
import { tempDir } from '../support/temp_dir';

/** A private masquerade directory: gcc and cc executable, notexec a plain file. */
async function masquerade(t: TestContext): Promise<string> {
  const dir = tempDir(t, 'distkit-allow-');
  for (const name of ['gcc', 'cc', 'x86_64-linux-gnu-gcc']) await fs.symlink('/usr/bin/distcc', path.join(dir, name));
  await fs.writeFile(path.join(dir, 'notexec'), '', { mode: 0o644 });
  return dir;
}

async function reason(argv: string[], policy: CompilerPolicy): Promise<string> {
  const r = await checkCompiler(argv, policy);
  if (r.ok) assert.fail(`allowed ${JSON.stringify(argv)}`);
  return r.reason;
}

async function allowed(argv: string[], policy: CompilerPolicy): Promise<string[]> {
  const r = await checkCompiler(argv, policy);
  if (!r.ok) assert.fail(`refused ${JSON.stringify(argv)}: ${r.reason}`);
  return r.argv;
}

test('checkCompiler allows a masquerade entry when given bare or under /usr/bin or /bin', async (t) => {
  const dir = await masquerade(t);
  const policy = { masqueradeDir: dir };
  assert.deepEqual(await allowed(['gcc', '-c', 'x.c'], policy), ['gcc', '-c', 'x.c']);
  assert.deepEqual(await allowed(['/usr/bin/gcc', '-c', 'x.c'], policy), ['/usr/bin/gcc', '-c', 'x.c']);
  await allowed(['/BIN/cc', '-c', 'x.c'], policy);
  await allowed(['/Usr/Bin/x86_64-linux-gnu-gcc', '-c', 'x.c'], policy);
});

test('checkCompiler refuses a program when it is not an executable masquerade entry', async (t) => {
  const dir = await masquerade(t);
  const policy = { masqueradeDir: dir };
  assert.match(await reason(['sh', '-c', 'id'], policy), /sh is not an executable entry/);
  assert.match(await reason(['notexec', '-c', 'x.c'], policy), /not an executable entry/);
  assert.match(await reason(['/usr/local/bin/gcc', '-c', 'x.c'], policy), /must be a bare name/);
  assert.match(await reason(['/usr/bin/../bin/sh'], policy), /must be a bare name/);
  assert.match(await reason(['..'], policy), /not an executable entry/);
  assert.match(await reason([], policy), /no compiler/);
  assert.match(await reason(['gc\0c'], policy), /NUL/);
  assert.match(await reason(['gcc'], { masqueradeDir: path.join(dir, 'missing') }), /not an executable entry/);
});

test('checkCompiler skips the masquerade check when insecure mode is on', async () => {
  assert.deepEqual(await allowed(['/opt/x/bin/cc', '-c', 'x.c'], { insecure: true, masqueradeDir: '/nonexistent' }), ['/opt/x/bin/cc', '-c', 'x.c']);
});

test('checkCompiler refuses plugins, specs and wrappers when insecure mode is on too', async () => {
  for (const bad of ['-fplugin=/tmp/evil.so', '-specs=/tmp/x', '--specs=/tmp/x', '-specs', '-wrapper', '-fplugin']) {
    assert.ok((await reason(['gcc', '-c', 'x.c', bad], { insecure: true })).length > 0, bad);
  }
});

test('checkCompiler refuses @file and file-writing options when the job has no tree', async () => {
  const policy = { insecure: true };
  assert.match(await reason(['gcc', '-c', 'x.c', '@/etc/shadow'], policy), /not part of the job/);
  assert.match(await reason(['gcc', '-c', 'x.c', '-MD', '-MF', '/etc/x'], policy), /-MF writes/);
  assert.match(await reason(['gcc', '-c', 'x.c', '-MF/etc/x'], policy), /-MF\/etc\/x writes/);
  assert.match(await reason(['gcc', '-c', 'x.c', '-aux-info', '/etc/x'], policy), /writes/);
  assert.match(await reason(['gcc', '-c', 'x.c', '-fdump-tree-all=/etc/x'], policy), /dump file/);
  await allowed(['gcc', '-c', 'x.c', '-MD', '-fdump-tree-all'], policy);
  assert.match(await reason(['gcc', '-c', 'x.c', '-Wp,-MD,/etc/x.d'], policy), /preprocessor write/);
  assert.match(await reason(['gcc', '-c', 'x.c', '-Wp,-MMD,x.d'], policy), /preprocessor write/);
  assert.match(await reason(['gcc', '-c', 'x.c', '-Xpreprocessor', '-MF'], policy), /dependency file/);
  await allowed(['gcc', '-c', 'x.c', '-Wp,-D_FORTIFY_SOURCE=2', '-Xpreprocessor', '-DX'], policy);
});

test('checkCompiler allows an @file when it is inside the job tree and refuses one that escapes', async (t) => {
  const root = tempDir(t, 'distkit-allow-');
  const cwd = path.join(root, 'home/u/src');
  await fs.mkdir(cwd, { recursive: true });
  await fs.writeFile(path.join(cwd, 'flags.rsp'), '-O2 -DX=1\n"-Wall"\n');
  await fs.writeFile(path.join(cwd, 'nested.rsp'), '-O2 @flags.rsp\n');
  await fs.writeFile(path.join(cwd, 'evil.rsp'), '-O2 "@/etc/passwd"\n');
  await fs.writeFile(path.join(cwd, 'plug.rsp'), '-fplugin=/tmp/x.so\n');
  await fs.symlink('/etc/passwd', path.join(cwd, 'link.rsp'));
  const policy = { insecure: true, job: { root, cwd } };
  await allowed(['gcc', '-c', 'x.c', '@flags.rsp'], policy);
  await allowed(['gcc', '-c', 'x.c', '@nested.rsp'], policy);
  await allowed(['gcc', '-c', 'x.c', '@missing.rsp'], policy);
  assert.match(await reason(['gcc', '-c', 'x.c', '@../../../../etc/passwd'], policy), /outside the job/);
  assert.match(await reason(['gcc', '-c', 'x.c', '@/etc/passwd'], policy), /outside the job/);
  assert.match(await reason(['gcc', '-c', 'x.c', '@evil.rsp'], policy), /outside the job/);
  assert.match(await reason(['gcc', '-c', 'x.c', '@link.rsp'], policy), /resolves outside/);
  assert.match(await reason(['gcc', '-c', 'x.c', '@plug.rsp'], policy), /plugin.*in @plug.rsp/);
  await allowed(['gcc', '-c', 'x.c', '-MF', '/tmp/out.d'], policy);
  assert.match(await reason(['gcc', '-c', 'x.c', '-save-temps'], policy), /intermediate files/);
  assert.match(await reason(['gcc', '-c', 'x.c', '-save-temps=cwd'], policy), /intermediate files/);
  assert.match(await reason(['gcc', '-c', 'x.c', '-dumpdir', 'sub/'], policy), /writes a file/);
  assert.match(await reason(['gcc', '-c', 'x.c', '-fdump-tree-all=x'], policy), /dump file/);
});

test('checkCompiler maps argv[0] to the listed line when DISTCC_CMDLIST matches the last words', async (t) => {
  const dir = tempDir(t, 'distkit-allow-');
  const file = path.join(dir, 'commands.allow');
  await fs.writeFile(file, '# compilers\n/local/tools/blort/sh4/gcc-3.3/bin/sh4-linux-gcc\n\n/usr/bin/gcc  \n');
  const one = { commandList: { file, numWords: 1 }, masqueradeDir: '/nonexistent' };
  assert.deepEqual(await allowed(['gcc', '-c', 'x.c'], one), ['/usr/bin/gcc', '-c', 'x.c']);
  assert.equal((await allowed(['/other/place/sh4-linux-gcc'], one))[0], '/local/tools/blort/sh4/gcc-3.3/bin/sh4-linux-gcc');
  assert.match(await reason(['cc', '-c', 'x.c'], one), /not in DISTCC_CMDLIST/);
  const three = { commandList: { file, numWords: 3 } };
  assert.equal((await allowed(['/zounds/gcc-3.3/bin/sh4-linux-gcc'], three))[0], '/local/tools/blort/sh4/gcc-3.3/bin/sh4-linux-gcc');
  assert.match(await reason(['/zounds/gcc-2.95/bin/sh4-linux-gcc'], three), /last 3 word/);
  assert.match(await reason(['sh4-linux-gcc'], three), /not in DISTCC_CMDLIST/);
});

test('checkCompiler fails closed when the DISTCC_CMDLIST file is unreadable or empty', async (t) => {
  const dir = tempDir(t, 'distkit-allow-');
  assert.match(await reason(['gcc', '-c', 'x.c'], { commandList: { file: path.join(dir, 'missing'), numWords: 1 } }), /Cannot read DISTCC_CMDLIST.*ENOENT/);
  const empty = path.join(dir, 'empty');
  await fs.writeFile(empty, '');
  assert.match(await reason(['gcc', '-c', 'x.c'], { commandList: { file: empty, numWords: 1 }, insecure: true }), /not in DISTCC_CMDLIST/);
  await assert.rejects(readCommandList(dir), (e: unknown) => e instanceof DistkitError && e.code === 'cmdlist-unreadable');
});

test('commandListFromEnv reads both word-count names when they are set', () => {
  assert.equal(commandListFromEnv({}), undefined);
  assert.equal(commandListFromEnv({ DISTCC_CMDLIST: '' }), undefined);
  assert.deepEqual(commandListFromEnv({ DISTCC_CMDLIST: '/f' }), { file: '/f', numWords: 1 });
  assert.deepEqual(commandListFromEnv({ DISTCC_CMDLIST: '/f', DISTCC_CMDLIST_NUMWORDS: '3' }), { file: '/f', numWords: 3 });
  assert.deepEqual(commandListFromEnv({ DISTCC_CMDLIST: '/f', DISTCC_CMDLIST_MATCHWORDS: '2' }), { file: '/f', numWords: 2 });
  assert.throws(() => commandListFromEnv({ DISTCC_CMDLIST: '/f', DISTCC_CMDLIST_NUMWORDS: 'x' }), /DISTCC_CMDLIST_NUMWORDS="x"/);
  assert.throws(() => commandListFromEnv({ DISTCC_CMDLIST: '/f', DISTCC_CMDLIST_NUMWORDS: '0' }), DistkitError);
});

test('checkCompiler refuses options that name server programs or directories when any protocol sends them', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['-B', '/usr/lib/gcc'], /^-B \/usr\/lib\/gcc makes the driver run cc1 and as/],
    [['-B/tmp/x/'], /^-B\/tmp\/x\/ makes the driver run/],
    [['-iplugindir=/tmp'], /^-iplugindir=\/tmp chooses the directory compiler plugins load from/],
    [['-imultilib', 'x'], /^-imultilib x adds a server include directory/],
    [['-imultiarch', 'x'], /^-imultiarch x adds a server include directory/],
    [['-Wa,-g,@/etc/shadow'], /^-Wa,-g,@\/etc\/shadow makes the assembler read a response file/],
    [['-Xassembler', '@/etc/shadow'], /^-Xassembler makes the assembler read a response file/],
  ];
  for (const [options, why] of cases) {
    assert.match(await reason(['gcc', '-c', 'x.c', ...options], { insecure: true }), why, options.join(' '));
  }
  await allowed(['gcc', '-c', 'x.c', '-Wa,-g', '-Xassembler', '-g', '--sysroot=/', '-isysroot', '/', '-O2'], { insecure: true });
});
