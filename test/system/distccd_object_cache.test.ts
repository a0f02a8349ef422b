// The object cache with Debian's real distcc client in protocols 1 and 2: a hit answers the same
// bytes (object, warnings) as the compile that stored it and as a fresh compile; every part of
// the key (flag, define, source byte, compiler, cc1) is a miss when it changes; corrupt and
// truncated entries are misses and the job still succeeds; two identical jobs at once run the
// compiler once; a small cache evicts and stays under its size.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { clientEnv, jobTree, makeMasqueradeDir, run, startDistccd, tempDir, type RunningDistccd } from '../support/distccd_harness';
import { encodeRequest, sendRaw } from '../support/raw_distcc_client';

const SOURCE = '#include <stdio.h>\n#include "h.h"\nint main(void) { int unused = 1; printf("%d\\n", twice(X)); return 0; }\n';
const HEADER = '#ifndef X\n#define X 3\n#endif\nstatic inline int twice(int x) { return 2 * x; }\n';

/** A compiler the test can change and count: it logs each compile and takes cc1 from its own dir (-B). */
function wrapperText(version: string): string {
  return `#!/bin/sh\n# ${version}\ncase " $* " in *" -c "*) echo run >> "$CC_COUNT_FILE";; esac\n[ -n "$CC_SLEEP" ] && case " $* " in *" -c "*) sleep "$CC_SLEEP";; esac\nexec gcc -B "$CC_B_DIR/" "$@"\n`;
}

interface Rig {
  readonly src: string;
  readonly cache: string;
  /** The daemon's TMPDIR. */
  readonly tmp: string;
  readonly bin: string;
  readonly bdir: string;
  readonly d: RunningDistccd;
  /** Runs the real client with `args`; returns the client's stderr and the job's cache state. */
  compile(args: readonly string[]): Promise<{ stderr: string; state: string }>;
  /** Runs the real client once per element at the same time; returns the jobs' cache states (in summary order). */
  compileAtOnce(argsList: readonly (readonly string[])[]): Promise<string[]>;
  runs(): Promise<number>;
}

async function rig(t: Parameters<typeof tempDir>[0], protocol: 1 | 2, options: { args?: readonly string[]; sleep?: string } = {}): Promise<Rig> {
  const root = tempDir(t, 'distkit-objcache-');
  const src = path.join(root, 'src');
  const bin = path.join(root, 'bin');
  const bdir = path.join(root, 'b');
  const tmp = path.join(root, 'tmp');
  const home = path.join(root, 'home');
  for (const dir of [src, bin, bdir, tmp, home]) await fs.mkdir(dir);
  await fs.writeFile(path.join(src, 't.c'), SOURCE);
  await fs.writeFile(path.join(src, 'h.h'), HEADER);
  await fs.writeFile(path.join(bin, 'mycc'), wrapperText('v1'), { mode: 0o755 });
  await fs.copyFile(execFileSync('gcc', ['-print-prog-name=cc1'], { encoding: 'utf8' }).trim(), path.join(bdir, 'cc1'));
  const masq = await makeMasqueradeDir(path.join(root, 'masq'), ['gcc', 'mycc']);
  const count = path.join(root, 'count');
  const cache = path.join(root, 'cache');
  const d = await startDistccd(t, {
    compilerDir: masq,
    // Unboxed: the counting compiler writes its log to a host file, which the sandbox hides (the
    // sandbox's own tests compile through it; the cache step runs the same either way).
    args: ['--cache-dir', cache, '--sandbox=off', ...(options.args ?? [])],
    env: { TMPDIR: tmp, DISTCCD_PATH: `${bin}:/usr/bin:/bin`, CC_COUNT_FILE: count, CC_B_DIR: bdir, CC_SLEEP: options.sleep ?? '' },
  });
  const env = { ...clientEnv(home, `127.0.0.1:${d.port}/4${protocol === 2 ? ',lzo' : ''}`), PATH: `${bin}:${process.env['PATH']}`, CC_COUNT_FILE: path.join(root, 'client-count'), CC_B_DIR: bdir };
  let jobs = 0;
  const client = async (args: readonly string[]) => {
    const r = await run('distcc', ['mycc', ...args], { cwd: src, env });
    assert.equal(r.code, 0, `distcc mycc ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  /** The cache states of the next `n` summary lines. */
  const states = async (n: number) => {
    jobs += n;
    await d.waitForCount(/dcc_job_summary/, jobs);
    return d.lines.filter((l) => l.includes('dcc_job_summary')).slice(jobs - n, jobs).map((line) => {
      assert.match(line, / COMPILE_OK exit:0 sig:0 core:0 ret:0 time:\d+ms \S+ t\.c cache:\w+$/);
      return / cache:(\w+)$/.exec(line)![1]!;
    });
  };
  return {
    src, cache, tmp, bin, bdir, d,
    async compile(args) {
      const r = await client(args);
      return { stderr: r.stderr, state: (await states(1))[0]! };
    },
    async compileAtOnce(argsList) {
      await Promise.all(argsList.map(client));
      return states(argsList.length);
    },
    runs: async () => (await fs.readFile(count, 'utf8').catch(() => '')).split('\n').filter(Boolean).length,
  };
}

/** The entry files of a disk cache. */
async function entries(cache: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await fs.readdir(cache)) {
    if (!/^[0-9a-f]{2}$/.test(sub)) continue;
    for (const name of await fs.readdir(path.join(cache, sub))) out.push(path.join(cache, sub, name));
  }
  return out.sort();
}

for (const protocol of [1, 2] as const) {
  test(`distccd answers a repeated job from its cache with the same bytes as a compile when protocol ${protocol} is used`, async (t) => {
    const r = await rig(t, protocol);
    const obj = (name: string) => fs.readFile(path.join(r.src, name));
    const first = await r.compile(['-g', '-O2', '-Wall', '-c', 't.c', '-o', 'a.o']);
    assert.equal(first.state, 'miss');
    assert.match(first.stderr, /unused variable/, 'the warning reaches the client');
    // A file made or removed in a directory moves its mtime: a hit leaves TMPDIR as it was.
    const tmpBefore = await fs.stat(r.tmp);
    const hit = await r.compile(['-g', '-O2', '-Wall', '-c', 't.c', '-o', 'b.o']);
    assert.equal(hit.state, 'hit');
    assert.equal((await fs.stat(r.tmp)).mtimeMs, tmpBefore.mtimeMs, 'a hit made a temp file');
    assert.equal(hit.stderr, first.stderr, 'a hit gives the warnings of the compile');
    assert.equal(await r.runs(), 1, 'the compiler ran once');
    assert.deepEqual(await obj('b.o'), await obj('a.o'));
    // A second fresh compile of the same request (the entry removed) gives the same bytes again.
    for (const file of await entries(r.cache)) await fs.unlink(file);
    assert.equal((await r.compile(['-g', '-O2', '-Wall', '-c', 't.c', '-o', 'c.o'])).state, 'miss');
    assert.equal(await r.runs(), 2);
    assert.deepEqual(await obj('c.o'), await obj('a.o'), 'two fresh compiles give the same bytes');
  });

  test(`distccd misses its cache when a flag, a define, a source byte, the compiler or cc1 changes when protocol ${protocol} is used`, async (t) => {
    const r = await rig(t, protocol);
    const base = ['-O2', '-c', 't.c', '-o', 'x.o'];
    assert.equal((await r.compile(base)).state, 'miss');
    assert.equal((await r.compile(base)).state, 'hit');
    const changes: Array<[string, () => Promise<readonly string[]>]> = [
      ['a flag', async () => ['-O1', ...base.slice(1)]],
      ['a define', async () => ['-DX=4', ...base]],
      ['a source byte', async () => {
        await fs.writeFile(path.join(r.src, 't.c'), SOURCE.replace('unused = 1', 'unused = 2'));
        return base;
      }],
      ['the compiler (its version output)', async () => {
        await fs.writeFile(path.join(r.bin, 'mycc'), wrapperText('v2').replace('case " $* " in *" -c "*) echo run', '[ "$1" = -dumpfullversion ] && { echo 99.1; echo x86_64-linux-gnu; exit 0; }\ncase " $* " in *" -c "*) echo run'), { mode: 0o755 });
        return base;
      }],
      ['cc1', async () => {
        await fs.appendFile(path.join(r.bdir, 'cc1'), Buffer.from([0]));
        return base;
      }],
    ];
    let runs = 1;
    for (const [what, change] of changes) {
      const args = await change();
      assert.equal((await r.compile(args)).state, 'miss', `changing ${what} is a miss`);
      assert.equal(await r.runs(), ++runs, `changing ${what} runs the compiler`);
      assert.equal((await r.compile(args)).state, 'hit', `then ${what} hits`);
    }
  });

  test(`distccd treats a corrupt or truncated cache entry as a miss and still compiles when protocol ${protocol} is used`, async (t) => {
    const r = await rig(t, protocol);
    const args = ['-O2', '-c', 't.c', '-o', 'x.o'];
    await r.compile(args);
    const good = await fs.readFile(path.join(r.src, 'x.o'));
    const [file] = await entries(r.cache);
    for (const damage of ['flip', 'truncate'] as const) {
      const bytes = await fs.readFile(file!);
      if (damage === 'flip') bytes[bytes.length >> 1] ^= 0x10;
      await fs.writeFile(file!, damage === 'flip' ? bytes : bytes.subarray(0, bytes.length - 7));
      await fs.rm(path.join(r.src, 'x.o'));
      assert.equal((await r.compile(args)).state, 'miss', `a ${damage}ped entry is a miss`);
      assert.deepEqual(await fs.readFile(path.join(r.src, 'x.o')), good);
      assert.equal((await r.compile(args)).state, 'hit', `the entry was stored again after the ${damage}`);
    }
    assert.equal(r.d.lines.filter((l) => /object cache entry corrupt: removed/.test(l)).length, 2);
  });
}

test('distccd runs the compiler once for two identical jobs at the same time', async (t) => {
  const r = await rig(t, 2, { sleep: '1' });
  const states = await r.compileAtOnce([['-O2', '-c', 't.c', '-o', 'a.o'], ['-O2', '-c', 't.c', '-o', 'b.o']]);
  assert.deepEqual(states.sort(), ['hit', 'miss']);
  assert.equal(await r.runs(), 1);
  assert.deepEqual(await fs.readFile(path.join(r.src, 'a.o')), await fs.readFile(path.join(r.src, 'b.o')));
});

test('distccd evicts the least recently used entries and stays under --cache-size when its cache is full', async (t) => {
  const size = 24 * 1024;
  const r = await rig(t, 2, { args: ['--cache-size', String(size)] });
  const sizes = async () => {
    let total = 0;
    for (const f of await entries(r.cache)) total += (await fs.stat(f)).size;
    return total;
  };
  for (let i = 0; i < 16; i++) {
    assert.equal((await r.compile([`-DX=${i}`, '-g', '-c', 't.c', '-o', `x${i}.o`])).state, 'miss');
    assert.ok((await sizes()) <= size, `after ${i + 1} jobs the cache holds ${await sizes()} bytes, over ${size}`);
  }
  await r.d.waitFor(/object cache evicted/);
  // The newest is still there, the oldest went first.
  assert.equal((await r.compile(['-DX=15', '-g', '-c', 't.c', '-o', 'y.o'])).state, 'hit');
  assert.equal((await r.compile(['-DX=0', '-g', '-c', 't.c', '-o', 'y.o'])).state, 'miss');
});

test('distccd keeps its cache across a restart and logs what the store holds when it starts', async (t) => {
  const { masq, tmp, root } = await jobTree(t, 'distkit-objcache-restart-');
  const cache = path.join(root, 'cache');
  const request = encodeRequest(2, ['gcc', '-O2', '-c', 't.c', '-o', 't.o'], 'int f(void){return 1;}\n');
  const first = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp }, args: ['--cache-dir', cache, '--cache-size', '10M'] });
  await first.waitFor(new RegExp(`object cache disk dir=${cache} entries=0 bytes=0 max=10485760 max-entry=67108864`));
  const a = await sendRaw(first.port, request);
  assert.ok(a.kind === 'answer' && a.response.status === 0);
  await first.waitFor(/ cache:miss$/);
  assert.equal(await first.stop(), 0);
  const second = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp }, args: ['--cache-dir', cache, '--cache-size', '10M'] });
  await second.waitFor(/object cache disk dir=\S+ entries=1 bytes=[1-9]/);
  const b = await sendRaw(second.port, request);
  assert.ok(b.kind === 'answer' && a.kind === 'answer');
  assert.deepEqual(b.response.object, a.response.object);
  await second.waitFor(/ cache:hit$/);
});

test('distccd says its cache is off and keeps C\'s summary line when started with --no-cache', async (t) => {
  const { masq, tmp } = await jobTree(t, 'distkit-objcache-off-');
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp }, args: ['--no-cache'] });
  await d.waitFor(/notice: object cache off/);
  const a = await sendRaw(d.port, encodeRequest(2, ['gcc', '-c', 't.c', '-o', 't.o'], 'int f(void){return 1;}\n'));
  assert.ok(a.kind === 'answer' && a.response.status === 0);
  await d.waitFor(/COMPILE_OK exit:0 sig:0 core:0 ret:0 time:\d+ms gcc t\.c$/);
});

test('distccd started by root makes its cache directory and gives it to the user it becomes', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
  const { masq, tmp, root } = await jobTree(t, 'distkit-objcache-root-');
  await fs.chmod(root, 0o755);
  await fs.chmod(tmp, 0o1777);
  const cache = path.join(root, 'var/cache/distccd');
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp }, keepRoot: false, args: ['--user', 'nobody', '--cache-dir', cache] });
  await d.waitFor(/privileges dropped .*user=nobody/);
  const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
  for (const dir of [cache, path.join(cache, 'tmp')]) assert.equal((await fs.stat(dir)).uid, nobody, `${dir} belongs to nobody`);
  // The user it became stores there.
  const a = await sendRaw(d.port, encodeRequest(2, ['gcc', '-c', 't.c', '-o', 't.o'], 'int f(void){return 1;}\n'));
  assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
  await d.waitFor(/ cache:miss$/);
  const b = await sendRaw(d.port, encodeRequest(2, ['gcc', '-c', 't.c', '-o', 't.o'], 'int f(void){return 1;}\n'));
  assert.ok(b.kind === 'answer' && b.response.status === 0);
  await d.waitFor(/ cache:hit$/);
});
