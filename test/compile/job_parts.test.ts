import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compilerEnvironment, serrLine } from '../../src/compile/job';
import { JobSlots } from '../../src/compile/job_slots';
import { MAX_CAPTURE_BYTES, runCompiler, waitStatusOf } from '../../src/compile/compiler_process';
import { summaryLine } from '../../src/compile/session';
import { TempFiles } from '../../src/compile/temp_files';

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

test('waitStatusOf encodes exit codes and signals as waitpid does', () => {
  assert.equal(waitStatusOf(0, null), 0);
  assert.equal(waitStatusOf(3, null), 0x300);
  assert.equal(waitStatusOf(null, 'SIGKILL'), 9);
  assert.equal(waitStatusOf(null, 'SIGSEGV'), 11);
});

test('TempFiles creates private files that cannot be pre-created and removes them all', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-temps-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const temps = new TempFiles(dir);
  const a = await temps.create('.i', Buffer.from('int x;\n'));
  const b = await temps.create('.o');
  assert.match(path.basename(a), /^distccd_[0-9a-f]{12}\.i$/);
  assert.equal((await fs.stat(a)).mode & 0o777, 0o600);
  assert.equal(await fs.readFile(a, 'utf8'), 'int x;\n');
  assert.equal((await fs.stat(b)).size, 0);
  await temps.removeAll();
  assert.deepEqual(await fs.readdir(dir), []);
  const kept = new TempFiles(dir, { keep: true });
  await kept.create('.ii');
  await kept.removeAll();
  assert.equal((await fs.readdir(dir)).length, 1, 'DISTCC_SAVE_TEMPS=1 keeps them');
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
