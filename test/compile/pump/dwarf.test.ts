import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { scrubDebugPaths, scrubDebugPathsInFile } from '../../../src/compile/pump/dwarf';

const run = promisify(execFile);

/** Compiles like a pump job would: in <root>/home/u/proj, with headers under <root>/usr/local/include. */
async function compileInTree(t: TestContext, extra: string[]): Promise<{ root: string; object: string }> {
  const root = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'distccd-pump-')));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const cwd = path.join(root, 'home/u/proj');
  await fs.mkdir(path.join(root, 'usr/local/include'), { recursive: true });
  await fs.mkdir(cwd, { recursive: true });
  await fs.writeFile(path.join(root, 'usr/local/include/lib.h'), 'struct point { int x, y; };\nstatic inline int sum(struct point p) { return p.x + p.y; }\n');
  await fs.writeFile(path.join(cwd, 'main.c'), '#include <lib.h>\nconst char *where = __FILE__;\nint f(int a) { struct point p = { a, 2 }; return sum(p); }\n');
  const object = path.join(root, 'out.o');
  await run('gcc', ['-g', ...extra, `-I${root}/usr/local/include`, '-c', `${cwd}/main.c`, '-o', object], { cwd });
  return { root, object };
}

async function debugDump(object: string): Promise<string> {
  const { stdout } = await run('readelf', ['--debug-dump=info,str,line', '--wide', object], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** [start, end) of each section named in `names`, from readelf -S. */
async function sectionRanges(object: string): Promise<Map<string, [number, number]>> {
  const { stdout } = await run('readelf', ['-S', '--wide', object]);
  const ranges = new Map<string, [number, number]>();
  for (const m of stdout.matchAll(/\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/g)) {
    ranges.set(m[1]!, [parseInt(m[2]!, 16), parseInt(m[2]!, 16) + parseInt(m[3]!, 16)]);
  }
  return ranges;
}

async function assertScrubbed(t: TestContext, extra: string[], sections: string[]): Promise<void> {
  const { root, object } = await compileInTree(t, extra);
  assert.ok((await debugDump(object)).includes(root), 'the unscrubbed object names the temp root');
  const before = await fs.readFile(object);
  const disasmBefore = (await run('objdump', ['-d', object])).stdout;
  const result = await scrubDebugPathsInFile(object, root);
  assert.ok(result.replaced > 0);
  assert.deepEqual(result.skipped, []);
  const dump = await debugDump(object);
  assert.ok(!dump.includes(root), 'no temp path remains in info, str or line');
  assert.match(dump, /\/+home\/u\/proj/);
  assert.match(dump, /\/+usr\/local\/include/);
  const after = await fs.readFile(object);
  assert.equal(after.length, before.length);
  const ranges = await sectionRanges(object);
  const allowed = sections.map((s) => ranges.get(s)).filter((r): r is [number, number] => r !== undefined);
  for (let i = 0; i < before.length; i++) {
    if (before[i] !== after[i]) assert.ok(allowed.some(([a, b]) => i >= a && i < b), `byte ${i} changed outside ${sections.join(' ')}`);
  }
  // __FILE__ in .rodata is program data, not debug info: left as compiled.
  assert.ok(after.includes(Buffer.from(`${root}/home/u/proj/main.c`)));
  assert.equal((await run('objdump', ['-d', object])).stdout.replace(/out\.o/g, ''), disasmBefore.replace(/out\.o/g, ''));
}

test('scrubDebugPaths removes the temp root from DWARF 5 when gcc put it in info, str and line_str', async (t) => {
  await assertScrubbed(t, [], ['.debug_info', '.debug_str', '.debug_line_str', '.debug_line']);
});

test('scrubDebugPaths removes the temp root from DWARF 4 when include dirs sit inline in .debug_line', async (t) => {
  await assertScrubbed(t, ['-gdwarf-4'], ['.debug_info', '.debug_str', '.debug_line']);
});

test('scrubDebugPaths pads with slashes to the same length when it replaces the root', () => {
  const { root, bytes } = fakeElf('/tmp/distccd-pump-abc');
  const out = scrubDebugPaths(bytes, root);
  assert.equal(out.replaced, 2);
  assert.equal(out.bytes.length, bytes.length);
  assert.ok(out.bytes.includes(Buffer.from('/'.repeat(root.length) + '/src/x.c')));
  assert.ok(out.bytes.includes(Buffer.from(`DATA ${root}`)), 'non-debug section untouched');
  assert.ok(bytes.includes(Buffer.from(`${root}/src/x.c`)), 'the input buffer is not modified');
});

test('scrubDebugPaths returns the input unchanged when it is not ELF, truncated or sectionless', () => {
  const root = '/tmp/distccd-pump-abc';
  const text = Buffer.from(`not an object ${root}`);
  assert.equal(scrubDebugPaths(text, root).bytes, text);
  const { bytes } = fakeElf(root);
  const truncated = bytes.subarray(0, 100);
  assert.equal(scrubDebugPaths(truncated, root).bytes, truncated);
  const sectionless = Buffer.from(bytes);
  sectionless.writeBigUInt64LE(0n, 0x28);
  assert.equal(scrubDebugPaths(sectionless, root).replaced, 0);
  assert.throws(() => scrubDebugPaths(bytes, '/'), RangeError);
});

test('scrubDebugPaths skips a compressed debug section when SHF_COMPRESSED is set', () => {
  const { root, bytes } = fakeElf('/tmp/distccd-pump-abc', 0x800);
  const out = scrubDebugPaths(bytes, root);
  assert.deepEqual(out.skipped, ['.debug_str']);
  assert.equal(out.replaced, 0);
});

/** A minimal ELF64 LE object: null section, .debug_str with two root paths, .rodata with one, .shstrtab. */
function fakeElf(root: string, debugFlags = 0): { root: string; bytes: Buffer } {
  const debug = Buffer.from(`${root}/src/x.c\0${root}\0`);
  const data = Buffer.from(`DATA ${root}\0`);
  const names = Buffer.from('\0.debug_str\0.rodata\0.shstrtab\0');
  const header = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(header);
  const debugAt = 64;
  const dataAt = debugAt + debug.length;
  const namesAt = dataAt + data.length;
  const shoff = namesAt + names.length;
  header.writeBigUInt64LE(BigInt(shoff), 0x28);
  header.writeUInt16LE(64, 0x3a);
  header.writeUInt16LE(4, 0x3c);
  header.writeUInt16LE(3, 0x3e);
  const sh = (name: number, type: number, flags: number, offset: number, size: number): Buffer => {
    const b = Buffer.alloc(64);
    b.writeUInt32LE(name, 0);
    b.writeUInt32LE(type, 4);
    b.writeBigUInt64LE(BigInt(flags), 8);
    b.writeBigUInt64LE(BigInt(offset), 24);
    b.writeBigUInt64LE(BigInt(size), 32);
    return b;
  };
  const table = Buffer.concat([sh(0, 0, 0, 0, 0), sh(1, 1, debugFlags, debugAt, debug.length), sh(12, 1, 2, dataAt, data.length), sh(20, 3, 0, namesAt, names.length)]);
  return { root, bytes: Buffer.concat([header, debug, data, names, table]) };
}
