import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scanArgs, rewriteArgs, serverPathOption, tempExtensionFor, isSource, type ScannedArgs } from '../../src/compile/args';

function accepted(argv: string[]): ScannedArgs {
  const r = scanArgs(argv);
  if (!r.ok) assert.fail(`refused ${JSON.stringify(argv)}: ${r.reason}`);
  return r.value;
}

function refusal(argv: string[]): string {
  const r = scanArgs(argv);
  if (r.ok) assert.fail(`accepted ${JSON.stringify(argv)}`);
  return r.reason;
}

test('scanArgs finds input and separate -o when the client sends a plain compile', () => {
  const s = accepted(['x86_64-linux-gnu-gcc', '-O2', '-c', 'src/t.c', '-o', 'obj/t.o']);
  assert.equal(s.input, 'src/t.c');
  assert.equal(s.inputIndex, 3);
  assert.equal(s.output, 'obj/t.o');
  assert.equal(s.outputForm, 'separate');
  assert.equal(s.impliedOutput, false);
  assert.equal(s.assembleOnly, false);
});

test('scanArgs appends -o basename.o when the command has no output', () => {
  const s = accepted(['gcc', '-c', 'dir/sub/hello.c']);
  assert.deepEqual(s.argv, ['gcc', '-c', 'dir/sub/hello.c', '-o', 'hello.o']);
  assert.equal(s.output, 'hello.o');
  assert.equal(s.impliedOutput, true);
});

test('scanArgs appends -o basename.s when -S has no output', () => {
  const s = accepted(['gcc', '-S', 'k.cpp']);
  assert.deepEqual(s.argv.slice(-2), ['-o', 'k.s']);
  assert.equal(s.assembleOnly, true);
});

test('scanArgs reads a joined -oFILE when the output is glued to -o', () => {
  const s = accepted(['cc', '-c', 'a.cc', '-oout/a.o']);
  assert.equal(s.output, 'out/a.o');
  assert.equal(s.outputForm, 'joined');
});

test('scanArgs accepts every source extension the client recognises', () => {
  for (const ext of ['c', 'cc', 'cpp', 'cxx', 'cp', 'c++', 'C', 'i', 'ii', 'm', 'mm', 'mi', 'mii', 'M']) {
    assert.equal(accepted(['gcc', '-c', `f.${ext}`]).input, `f.${ext}`);
  }
  assert.equal(isSource('f.s'), false);
  assert.equal(isSource('f.h'), false);
  assert.equal(isSource('noext'), false);
});

test('scanArgs skips the argument of -MF -MT -MQ when dependency options are present', () => {
  const s = accepted(['gcc', '-MD', '-MMD', '-MG', '-MP', '-MF', 'x.c', '-MT', 'y.o', '-MQ', 'z.o', '-MFa.d', '-c', 't.c']);
  assert.equal(s.input, 't.c');
  assert.equal(s.output, 't.o');
});

test('scanArgs refuses -E and other -M options when they imply preprocessing only', () => {
  assert.match(refusal(['gcc', '-E', 't.c']), /-E/);
  for (const m of ['-M', '-MM', '-Mfoo']) assert.match(refusal(['gcc', '-c', m, 't.c']), /implies -E/);
});

test('scanArgs refuses machine-local and file-writing flags when they are present', () => {
  for (const flag of ['-march=native', '-mtune=native', '-flto', '-flto=auto', '-fprofile-arcs', '-ftest-coverage', '--coverage',
    '-fprofile-generate', '-fprofile-generate=dir', '-fprofile-use', '-frepo', '-drfoo', '-Wa,-alh=x.lst', '-Wa,--MD,x.d']) {
    assert.ok(refusal(['gcc', '-c', 't.c', flag]).length > 0, flag);
  }
  accepted(['gcc', '-c', 't.c', '-march=x86-64', '-Wa,--noexecstack']);
});

test('scanArgs accepts C-family -x languages and refuses the others', () => {
  accepted(['gcc', '-x', 'c', '-c', 't.c']);
  accepted(['gcc', '-xc++', '-c', 't.cc']);
  accepted(['gcc', '-x', 'cpp-output', '-c', 't.i']);
  assert.match(refusal(['gcc', '-x', 'assembler', '-c', 't.c']), /-x assembler/);
  assert.match(refusal(['gcc', '-xada', '-c', 't.c']), /-x ada/);
  assert.match(refusal(['gcc', '-c', 't.c', '-x']), /-x needs/);
});

test('scanArgs refuses when the shape is not one compile', () => {
  assert.match(refusal([]), /ARGC 0/);
  assert.match(refusal(['-c', 't.c']), /starts with "-"/);
  assert.match(refusal(['gcc', 't.c', '-o', 't']), /neither -c nor -S/);
  assert.match(refusal(['gcc', '-c', 'a.c', 'b.c']), /two input/);
  assert.match(refusal(['gcc', '-c', 'a.h']), /no input/);
  assert.match(refusal(['gcc', '-c', 'a.c', '-o', 'x.o', 'y.o']), /two outputs/);
  assert.match(refusal(['gcc', '-c', 'a.c', '-o', '-']), /stdout/);
  assert.match(refusal(['gcc', '-c', 'a.c', '-o-']), /stdout/);
  assert.match(refusal(['gcc', '-c', 'a.c', '-o']), /-o needs/);
  assert.match(refusal(['gcc', '-c', 'a.c', '-MF']), /-MF needs/);
  assert.match(refusal(['gcc', '-c', 'sub/conftest.c']), /autoconf/);
  assert.match(refusal(['gcc', '-c', 'tmp.conftest.c']), /autoconf/);
});

test('tempExtensionFor follows the client input when choosing the preprocessed extension', () => {
  const want: Record<string, string> = {
    'a.c': '.i', 'a.i': '.i', 'a.cc': '.ii', 'a.cpp': '.ii', 'a.cxx': '.ii', 'a.cp': '.ii', 'a.c++': '.ii', 'a.C': '.ii',
    'a.ii': '.ii', 'a.m': '.mi', 'a.mi': '.mi', 'a.mm': '.mii', 'a.M': '.mii', 'a.mii': '.mii',
  };
  for (const [file, ext] of Object.entries(want)) assert.equal(tempExtensionFor(file), ext, file);
  assert.throws(() => tempExtensionFor('a.s'), RangeError);
});

test('rewriteArgs replaces input and output when the output is separate, joined, bare or implied', () => {
  const paths = { input: '/tmp/d/in.i', output: '/tmp/d/out.o' };
  assert.deepEqual(rewriteArgs(accepted(['gcc', '-c', 't.c', '-o', 'x/t.o', '-g']), paths), ['gcc', '-c', '/tmp/d/in.i', '-o', '/tmp/d/out.o', '-g']);
  assert.deepEqual(rewriteArgs(accepted(['gcc', '-ox/t.o', '-c', 't.c']), paths), ['gcc', '-o/tmp/d/out.o', '-c', '/tmp/d/in.i']);
  assert.deepEqual(rewriteArgs(accepted(['gcc', 'x/t.o', '-c', 't.c']), paths), ['gcc', '-o', '/tmp/d/out.o', '-c', '/tmp/d/in.i']);
  assert.deepEqual(rewriteArgs(accepted(['gcc', '-c', 't.c']), paths), ['gcc', '-c', '/tmp/d/in.i', '-o', '/tmp/d/out.o']);
});

test('rewriteArgs leaves the scanned argv untouched when it builds the new one', () => {
  const s = accepted(['gcc', '-c', 't.c']);
  rewriteArgs(s, { input: 'i', output: 'o' });
  assert.deepEqual(s.argv, ['gcc', '-c', 't.c', '-o', 't.o']);
  assert.ok(Object.isFrozen(s.argv));
});

test('serverPathOption refuses a -x that preprocesses again and accepts the preprocessed languages when protocols 1 and 2 carry .i text', () => {
  for (const argv of [['gcc', '-x', 'c', '-c', 'x.c'], ['gcc', '-xc++', '-c', 'x.cc'], ['gcc', '-x', 'objective-c', '-c', 'x.m'], ['gcc', '-x', 'assembler-with-cpp', '-c', 'x.c']]) {
    assert.match(serverPathOption(argv) ?? '', /^-x \S+ makes the server preprocess again/, argv.join(' '));
  }
  for (const argv of [['gcc', '-x', 'none', '-c', 'x.c'], ['gcc', '-xcpp-output', '-c', 'x.i'], ['gcc', '-x', 'c++-cpp-output', '-c', 'x.ii'], ['gcc', '-O2', '--sysroot=/', '-isysroot', '/', '-c', 'x.c']]) {
    assert.equal(serverPathOption(argv), undefined, argv.join(' '));
  }
});
