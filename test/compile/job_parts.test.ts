import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { closeSync, openSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { compilerEnvironment, serrLine } from '../../src/compile/job';
import { JobSlots } from '../../src/compile/job_slots';
import { MAX_CAPTURE_BYTES, runCompiler, setExitWatching } from '../../src/compile/compiler_process';
import { summaryLine } from '../../src/compile/compile_job';
import { SWEEP_INTERVAL_MS, TempFiles } from '../../src/compile/temp_files';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the module object itself, to count readdir calls
const fsPromisesModule = require('node:fs/promises') as { readdir: typeof fs.readdir };

test('compilerEnvironment takes PATH from DISTCCD_PATH and increments _DISTCC_SAFEGUARD', () => {
  const env = compilerEnvironment({ PATH: '/usr/lib/distcc:/usr/bin:/bin', DISTCCD_PATH: '/opt/cc/bin', _DISTCC_SAFEGUARD: '1', HOME: '/h' }, ['/usr/lib/distcc']);
  assert.equal(env['PATH'], '/opt/cc/bin');
  assert.equal(env['_DISTCC_SAFEGUARD'], '2');
  assert.equal(env['HOME'], '/h');
});

test('compilerEnvironment drops masquerade dirs from PATH and the service manager variables', () => {
  const env = compilerEnvironment({ PATH: '/usr/lib/distcc:/masq/:/usr/bin::/bin', NOTIFY_SOCKET: '/run/n', LISTEN_FDS: '1', LISTEN_PID: '9' }, ['/usr/lib/distcc', '/masq']);
  assert.equal(env['PATH'], '/usr/bin:/bin');
  assert.equal(env['_DISTCC_SAFEGUARD'], '1');
  assert.equal(env['NOTIFY_SOCKET'], undefined);
  assert.equal(env['LISTEN_FDS'], undefined);
});

test('serrLine and summaryLine use distccd formats', () => {
  assert.equal(serrLine(42, 'Compilation takes too long, timeout.').toString(), 'distccd[42] ERROR: Compilation takes too long, timeout.\n');
  const base = { compiler: 'x86_64-linux-gnu-gcc', input: 't.c' };
  assert.equal(summaryLine('127.0.0.1:59404', { ...base, result: 'COMPILE_OK', status: 0, ret: 0 }, 22),
    'client: 127.0.0.1:59404 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:22ms x86_64-linux-gnu-gcc t.c');
  assert.equal(summaryLine('pipe', { ...base, result: 'COMPILE_ERROR', status: 0x8b, ret: 0 }, 5),
    'client: pipe COMPILE_ERROR exit:0 sig:11 core:1 ret:0 time:5ms x86_64-linux-gnu-gcc t.c');
  assert.equal(summaryLine('[::1]:5', { ...base, result: 'COMPILE_TIMEOUT', status: 118 << 8, ret: 118 }, 1000),
    'client: [::1]:5 COMPILE_TIMEOUT exit:118 sig:0 core:0 ret:118 time:1000ms');
});

test('runCompiler reports the raw wait status of exits and signals', async () => {
  const env = { PATH: '/usr/bin:/bin' };
  const status = async (script: string): Promise<number | undefined> => {
    const run = await runCompiler({ argv: ['sh', '-c', script], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 0 });
    return run.kind === 'exited' ? run.status : undefined;
  };
  assert.equal(await status('exit 0'), 0);
  assert.equal(await status('exit 3'), 0x300);
  assert.equal(await status('ulimit -c 0; kill -SEGV $$'), 11);
  assert.equal(await status('kill -KILL $$'), 9);
});

test('runCompiler gives the compiler only fds 0-2, default signals, its own session and the cwd asked', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-cwd-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  // A descriptor the daemon holds without O_CLOEXEC (as a systemd listener is) must not leak.
  const leaky = openSync('/dev/null', 'r');
  t.after(() => closeSync(leaky));
  // Each probe is exec'd directly (no shell in between: dash blocks every signal while it waits).
  const probe = async (argv: string[]): Promise<string[]> => {
    const run = await runCompiler({ argv, cwd: dir, env: { PATH: '/usr/bin:/bin' }, nice: 0, lifetimeMs: 0 });
    assert.ok(run.kind === 'exited' && run.status === 0, JSON.stringify(run));
    return run.stdout.toString().trim().split('\n');
  };
  // ls holds fd 3 itself for the listing; anything else came from the daemon.
  assert.deepEqual((await probe(['ls', '/proc/self/fd'])).map(Number).sort((x, y) => x - y), [0, 1, 2, 3], 'only stdio is inherited');
  const status = Object.fromEntries((await probe(['grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status'])).map((l) => l.split(/:\s+/)));
  assert.match(status['SigBlk'] ?? '', /^0+$/, 'no signal blocked');
  // Signals 1-31 (SIGPIPE among them, which Node ignores) are back to default. glibc's spawn
  // leaves its own internal 32 and 33 ignored; libc re-arms them in any program that uses them.
  assert.equal(BigInt(`0x${status['SigIgn'] ?? 'x'}`) & 0x7fffffffn, 0n, `no standard signal ignored: ${status['SigIgn']}`);
  const [ids, cwd, stdin] = await probe(['sh', '-c', 'echo sid=$(cut -d" " -f6 /proc/$$/stat) pid=$$; pwd; readlink /proc/$$/fd/0']);
  const [sid, pid] = (ids ?? '').match(/\d+/g) ?? [];
  assert.equal(sid, pid, 'the compiler leads its own session (and process group)');
  assert.equal(cwd, dir);
  assert.equal(stdin, '/dev/null');
});

test('runCompiler reports a step that fails inside the child with its errno and leaves no child behind', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-childfail-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  // Executable, so the PATH search takes it, but neither ELF nor #!: execve itself says ENOEXEC.
  const junk = path.join(dir, 'junk-compiler');
  await fs.writeFile(junk, Buffer.from([0x00, 0x01, 0x02, 0x03, 0xff, 0xfe]), { mode: 0o755 });
  const env = { PATH: '/usr/bin:/bin' };
  const noExec = await runCompiler({ argv: [junk, '-c'], cwd: dir, env, nice: 0, lifetimeMs: 0 });
  assert.equal(noExec.kind, 'exec-failed');
  assert.match(noExec.kind === 'exec-failed' ? noExec.reason : '', /ENOEXEC/);
  // chdir runs in the child, after the fork: a missing directory is reported all the same.
  const noCwd = await runCompiler({ argv: ['true'], cwd: path.join(dir, 'gone'), env, nice: 0, lifetimeMs: 0 });
  assert.equal(noCwd.kind, 'exec-failed');
  assert.match(noCwd.kind === 'exec-failed' ? noCwd.reason : '', /ENOENT/);
  // Each failed child exited with 127 before exec and was reaped there: no zombie is left.
  const children = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'stat=,args='], { encoding: 'utf8' });
  assert.doesNotMatch(children, /^Z/m, children);
  // And the next spawn, on the same kept stack, works.
  const ok = await runCompiler({ argv: ['sh', '-c', 'echo fine'], cwd: dir, env, nice: 0, lifetimeMs: 0 });
  assert.equal(ok.kind === 'exited' && ok.stdout.toString(), 'fine\n');
});

test('TempFiles creates private files that cannot be pre-created and removes them all', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-temps-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const temps = new TempFiles(dir);
  const a = temps.create('.i', Buffer.from('int x;\n'));
  const b = temps.create('.o');
  assert.match(path.basename(a), /^distccd_[0-9a-f]{12}\.i$/);
  assert.equal((await fs.stat(a)).mode & 0o777, 0o600);
  assert.equal(await fs.readFile(a, 'utf8'), 'int x;\n');
  assert.equal((await fs.stat(b)).size, 0);
  await temps.removeAll();
  assert.deepEqual(await fs.readdir(dir), []);
  const kept = new TempFiles(dir, { keep: true });
  kept.create('.ii');
  await kept.removeAll();
  assert.equal((await fs.readdir(dir)).length, 1, 'DISTCC_SAVE_TEMPS=1 keeps them');
});

test('TempFiles finds side files of jobs that end together with one listing of the directory', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-sweep-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const jobs = Array.from({ length: 12 }, () => new TempFiles(dir));
  for (const temps of jobs) {
    const input = temps.create('.i');
    await fs.writeFile(input.replace(/\.i$/, '.su'), 'f 16 static\n'); // what -fstack-usage leaves
  }
  const other = path.join(dir, 'not-ours.txt');
  await fs.writeFile(other, '');
  const listings: string[] = [];
  const readdir = fsPromisesModule.readdir;
  t.after(() => { fsPromisesModule.readdir = readdir; });
  fsPromisesModule.readdir = ((p: string, ...rest: unknown[]) => {
    listings.push(p);
    return (readdir as (...a: unknown[]) => Promise<string[]>)(p, ...rest);
  }) as typeof readdir;
  const first = Date.now();
  await Promise.all(jobs.slice(0, 6).map((temps) => temps.removeAll()));
  assert.equal(listings.length, 1, 'six jobs ending together: one listing');
  await Promise.all(jobs.slice(6).map((temps) => temps.removeAll()));
  assert.equal(listings.length, 2);
  assert.ok(Date.now() - first >= SWEEP_INTERVAL_MS - 5, 'the next listing waits out the interval');
  assert.deepEqual(await fs.readdir(dir), ['not-ours.txt']);
});

test('TempFiles with inline cleanup removes its files and their side files before removeAll returns', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-inline-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const temps = new TempFiles(dir, { inline: true });
  const input = temps.create('.i');
  await fs.writeFile(input.replace(/\.i$/, '.dwo'), ''); // what -gsplit-dwarf leaves
  await fs.mkdir(input.replace(/\.i$/, '.d')); // a directory under the same stem
  await fs.writeFile(path.join(dir, 'not-ours.o'), '');
  const removal = temps.removeAll();
  assert.deepEqual(await fs.readdir(dir), ['not-ours.o'], 'gone already: the calls were synchronous');
  await removal;
});

test('runCompiler captures output and status, reports exec failures and kills on timeout', async () => {
  const env = { PATH: '/usr/bin:/bin' };
  const ok = await runCompiler({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 0 });
  assert.deepEqual(ok.kind === 'exited' && [ok.status, ok.stdout.toString(), ok.stderr.toString()], [0x300, 'out\n', 'err\n']);
  const stdin = await runCompiler({ argv: ['sh', '-c', 'cat; echo done'], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 0 });
  assert.equal(stdin.kind === 'exited' && stdin.stdout.toString(), 'done\n', 'stdin is /dev/null');
  const missing = await runCompiler({ argv: ['no-such-compiler-xyz', '-c'], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 0 });
  assert.equal(missing.kind, 'exec-failed');
  assert.match(missing.kind === 'exec-failed' ? missing.reason : '', /ENOENT/);
  const slow = await runCompiler({ argv: ['sleep', '30'], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 200 });
  assert.equal(slow.kind, 'timeout');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  const gone = await runCompiler({ argv: ['sleep', '30'], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 0, signal: ac.signal });
  assert.equal(gone.kind, 'aborted');
});

test('JobSlots grants at most its limit and serves waiters in order, dropping ones that give up', async () => {
  const slots = new JobSlots(1);
  const order: string[] = [];
  const first = await slots.acquire();
  const ac = new AbortController();
  const b = slots.acquire().then((release) => { order.push('b'); return release; });
  const quitter = slots.acquire(ac.signal).then(() => order.push('quitter'), () => order.push('quitter left'));
  const c = slots.acquire().then((release) => { order.push('c'); return release; });
  assert.equal(slots.waiting, 3);
  ac.abort();
  await quitter;
  first();
  (await b)();
  (await c)();
  assert.deepEqual(order, ['quitter left', 'b', 'c']);
  assert.equal(slots.busy, 0);
  assert.throws(() => new JobSlots(0), RangeError);
});

test('runCompiler keeps exactly the first MAX_CAPTURE_BYTES of stderr when a chunk straddles the cap', async () => {
  // 1000 bytes, a pause, then the rest: the pipe reads can no longer line up with the 16 MiB cap,
  // so one chunk straddles it. A byte pattern that depends on the position shows any hole.
  const total = MAX_CAPTURE_BYTES + 1024 * 1024;
  const script = [
    'import sys, time',
    `data = (bytes(range(251)) * (${total} // 251 + 1))[:${total}]`,
    'sys.stderr.buffer.write(data[:1000]); sys.stderr.buffer.flush(); time.sleep(0.05)',
    'sys.stderr.buffer.write(data[1000:]); sys.stderr.buffer.flush()',
  ].join('\n');
  const run = await runCompiler({ argv: ['python3', '-c', script], cwd: os.tmpdir(), env: { PATH: '/usr/bin:/bin' }, nice: 0, lifetimeMs: 0 });
  assert.ok(run.kind === 'exited');
  const expected = Buffer.alloc(MAX_CAPTURE_BYTES);
  for (let i = 0; i < expected.length; i++) expected[i] = i % 251;
  assert.ok(run.stderr.subarray(0, MAX_CAPTURE_BYTES).equals(expected), 'the kept bytes are the first 16 MiB, in order, without holes');
  assert.equal(run.stderr.subarray(MAX_CAPTURE_BYTES).toString(), `\n[distccd: ${total - MAX_CAPTURE_BYTES} more bytes dropped]\n`);
});

test('runCompiler gives each of many concurrent children its own status, by pidfd and by SIGCHLD', async (t) => {
  t.after(() => setExitWatching('pidfd'));
  const env = { PATH: '/usr/bin:/bin' };
  for (const mode of ['pidfd', 'sigchld'] as const) {
    setExitWatching(mode);
    // Exits land in bursts (several SIGCHLDs coalesce into one) and in a scattered order.
    const runs = await Promise.all(Array.from({ length: 24 }, (_, i) =>
      runCompiler({ argv: ['sh', '-c', `sleep 0.0${i % 4}; echo ${i}; exit ${i}`], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 0 })));
    assert.deepEqual(runs.map((r) => r.kind === 'exited' && [r.status >> 8, r.stdout.toString()]),
      Array.from({ length: 24 }, (_, i) => [i, `${i}\n`]), mode);
    const killed = await runCompiler({ argv: ['sh', '-c', 'kill -KILL $$'], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 0 });
    assert.equal(killed.kind === 'exited' && killed.status, 9, mode);
    const slow = await runCompiler({ argv: ['sleep', '30'], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 100 });
    assert.equal(slow.kind, 'timeout', mode);
  }
});

test('runCompiler returns stdout of every size whole: empty, under, at and over the first read', async () => {
  const env = { PATH: '/usr/bin:/bin' };
  for (const size of [0, 1, 65535, 65536, 65537, 300_000]) {
    const run = await runCompiler({ argv: ['head', '-c', String(size), '/dev/zero'], cwd: os.tmpdir(), env, nice: 0, lifetimeMs: 0 });
    assert.ok(run.kind === 'exited' && run.status === 0);
    assert.equal(run.stdout.length, size, `${size} bytes`);
    assert.ok(run.stdout.equals(Buffer.alloc(size)), `${size} bytes intact`);
  }
});
