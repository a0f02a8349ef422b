// Job control in our distccd: --job-lifetime kills and answers STAT 118<<8, a client that gives up
// gets its compiler's whole process group killed, an exec failure answers 110<<8, and --jobs
// queues extra jobs instead of refusing them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd, tempDir } from '../support/distccd_harness';
import { encodeRequest, sendRaw, type RawAnswer } from '../support/raw_distcc_client';
import { settledListing } from '../support/settled_listing';

const SOURCE = 'int f(int x) { return x + 1; }\n';

function answered(a: RawAnswer): Extract<RawAnswer, { kind: 'answer' }>['response'] {
  assert.equal(a.kind, 'answer', JSON.stringify(a));
  return (a as Extract<RawAnswer, { kind: 'answer' }>).response;
}

async function setup(t: Parameters<typeof tempDir>[0], scripts: Record<string, string>): Promise<{ dir: string; masq: string; env: NodeJS.ProcessEnv }> {
  const dir = tempDir(t, 'distkit-jobs-');
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  for (const [name, body] of Object.entries(scripts)) await fs.writeFile(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'), [...Object.keys(scripts), 'nosuchcc', 'gcc', 'true']);
  const tmp = path.join(dir, 'tmp');
  await fs.mkdir(tmp);
  return { dir, masq, env: { DISTCCD_PATH: `${bin}:/usr/bin:/bin`, TMPDIR: tmp } };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

test('distccd kills a compile and answers STAT 118<<8 when --job-lifetime runs out', async (t) => {
  const { dir, masq, env } = await setup(t, { slowcc: `echo $$ > "${'$'}{PIDFILE}"; echo working >&2; exec sleep 30` });
  const pidFile = path.join(dir, 'slow.pid');
  // Unsandboxed: the compiler writes its pid to the host's file (distccd_sandbox.test.ts times out in the sandbox).
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, PIDFILE: pidFile }, args: ['--job-lifetime', '1', '--sandbox=off'] });
  // No bound on how long it took: STAT 118 and the message below say the lifetime ended it.
  const r = answered(await sendRaw(d.port, encodeRequest(2, ['slowcc', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(r.status, 118 << 8);
  assert.match(r.stderr.toString(), new RegExp(`^working\\ndistccd\\[${d.child.pid}\\] ERROR: Compilation takes too long, timeout\\.\\n$`));
  assert.equal(r.object.length, 0);
  await d.waitFor(/COMPILE_TIMEOUT exit:118 sig:0 core:0 ret:118/);
  assert.ok(await waitGone(Number(await fs.readFile(pidFile, 'utf8')), 5000));
  assert.deepEqual(await settledListing(env['TMPDIR']!), []);
});

test('distccd kills the compiler process group when the client disconnects while it compiles', async (t) => {
  // The "compiler" starts a grandchild in its group: both must die.
  const { dir, masq, env } = await setup(t, { hangcc: `sleep 30 & echo $! > "${'$'}{PIDFILE}.child"; echo $$ > "${'$'}{PIDFILE}"; wait` });
  const pidFile = path.join(dir, 'hang.pid');
  // Unsandboxed: the compiler writes its pids to the host's files (distccd_sandbox.test.ts kills in the sandbox).
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, PIDFILE: pidFile }, args: ['--sandbox=off'] });
  const a = await sendRaw(d.port, encodeRequest(1, ['hangcc', '-c', 't.c', '-o', 't.o'], SOURCE), { abandonAfterMs: 1000 });
  assert.equal(a.kind, 'closed');
  await d.waitFor(/CLI_DISCONN exit:107 sig:0 core:0 ret:107/);
  assert.ok(await waitGone(Number(await fs.readFile(pidFile, 'utf8')), 5000), 'the compiler is killed');
  assert.ok(await waitGone(Number(await fs.readFile(`${pidFile}.child`, 'utf8')), 5000), 'its process group is killed');
  assert.deepEqual(await settledListing(env['TMPDIR']!), []);
});

test('distccd answers STAT 110<<8 with the exec error in SERR when the compiler cannot be run', async (t) => {
  const { masq, env } = await setup(t, {});
  const d = await startDistccd(t, { compilerDir: masq, env });
  const r = answered(await sendRaw(d.port, encodeRequest(1, ['nosuchcc', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(r.status, 110 << 8);
  assert.match(r.stderr.toString(), /^distccd\[\d+\] ERROR: failed to exec nosuchcc: ENOENT/);
  await d.waitFor(/COMPILE_ERROR exit:110 sig:0 core:0 ret:110 time:\d+ms nosuchcc t\.c$/);
});

test('distccd runs at most --jobs compilers at once and queues the rest without refusing any', async (t) => {
  const { dir, masq, env } = await setup(t, { queuecc: `echo "start $$" >> "${'$'}{TRACE}"; sleep 0.3; echo "end $$" >> "${'$'}{TRACE}"; exec gcc "$@"` });
  const trace = path.join(dir, 'trace');
  // Unsandboxed: the compilers write their trace to the host's file, which the sandbox hides.
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, TRACE: trace }, args: ['--jobs', '1', '--sandbox=off'] });
  const answers = await Promise.all([0, 1, 2].map(() => sendRaw(d.port, encodeRequest(2, ['queuecc', '-c', 't.c', '-o', 't.o'], SOURCE))));
  for (const a of answers) assert.equal(answered(a).status, 0);
  const events = (await fs.readFile(trace, 'utf8')).trim().split('\n').map((l) => l.split(' ')[0]);
  assert.deepEqual(events, ['start', 'end', 'start', 'end', 'start', 'end']);
  await d.waitForCount(/ COMPILE_OK /, 3);
});

test('distccd runs compilers with --nice added to its priority, in TMPDIR, with stdin /dev/null and the safeguard set', async (t) => {
  const { dir, masq, env } = await setup(t, { probecc: `{ nice; pwd; cat; echo "safeguard=$_DISTCC_SAFEGUARD"; } > "${'$'}{PROBE}"; exec gcc "$@"` });
  const probe = path.join(dir, 'probe');
  // Unsandboxed: the compiler reports to the host's file, and its cwd is the host's TMPDIR.
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, PROBE: probe }, args: ['--nice', '7', '--sandbox=off'] });
  const r = answered(await sendRaw(d.port, encodeRequest(1, ['probecc', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(r.status, 0, r.stderr.toString());
  const [nice, cwd, safeguard] = (await fs.readFile(probe, 'utf8')).trim().split('\n');
  assert.equal(Number(nice), Math.min(19, (await import('node:os')).getPriority() + 7));
  assert.equal(cwd, env['TMPDIR']);
  assert.equal(safeguard, 'safeguard=1');
});

test('distccd answers STAT 100<<8 with the reason when its TMPDIR vanished and serves again once it is back', async (t) => {
  const { masq, env } = await setup(t, {});
  const d = await startDistccd(t, { compilerDir: masq, env });
  await fs.rm(env['TMPDIR']!, { recursive: true });
  const r = answered(await sendRaw(d.port, encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(r.status, 100 << 8);
  assert.match(r.stderr.toString(), /^distccd\[\d+\] ERROR: .*ENOENT/);
  await d.waitFor(/OTHER exit:100 sig:0 core:0 ret:100/);
  await fs.mkdir(env['TMPDIR']!);
  const again = answered(await sendRaw(d.port, encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(again.status, 0);
});

test('distccd finishes and answers a job in flight when SIGTERM arrives, then exits 0', async (t) => {
  const { masq, env } = await setup(t, { pausecc: 'sleep 1; exec gcc "$@"' });
  const d = await startDistccd(t, { compilerDir: masq, env });
  const pending = sendRaw(d.port, encodeRequest(2, ['pausecc', '-c', 't.c', '-o', 't.o'], SOURCE));
  await d.waitFor(/request .*argv="pausecc/);
  d.child.kill('SIGTERM');
  const r = answered(await pending);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.ok(r.object.length > 0);
  assert.equal(await d.exited, 0);
});

test('distccd keeps its temp files when DISTCC_SAVE_TEMPS=1', async (t) => {
  const { masq, env } = await setup(t, {});
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, DISTCC_SAVE_TEMPS: '1' } });
  const r = answered(await sendRaw(d.port, encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(r.status, 0);
  const kept = (await fs.readdir(env['TMPDIR']!)).sort();
  assert.equal(kept.length, 2);
  assert.match(kept.join(' '), /^distccd_[0-9a-f]{12}\.(i|o) distccd_[0-9a-f]{12}\.(i|o)$/);
});

test('distccd answers every one of many concurrent jobs mixed with garbage connections when --jobs is small', async (t) => {
  const { masq, env } = await setup(t, {});
  const d = await startDistccd(t, { compilerDir: masq, env, args: ['--jobs', '2', '--log-level', 'info'] });
  const JOBS = 30;
  const good = Array.from({ length: JOBS }, (_, i) => sendRaw(d.port, encodeRequest(1 + (i % 2), ['true', '-c', `f${i}.c`, '-o', `f${i}.o`], SOURCE), { timeoutMs: 60_000 }));
  const junk = Array.from({ length: 10 }, (_, i) => sendRaw(d.port, Buffer.from(`GARBAGE ${i} `.repeat(i + 1)), { timeoutMs: 60_000 }));
  for (const a of await Promise.all(good)) assert.equal(answered(a).status, 0);
  for (const a of await Promise.all(junk)) assert.equal(a.kind, 'closed');
  await d.waitForCount(/ COMPILE_OK /, JOBS);
  await d.waitForCount(/ REJ_BAD_REQ /, 10);
  assert.equal(d.child.exitCode, null);
  assert.deepEqual(await settledListing(env['TMPDIR']!), []);
});

test('distccd --user drops root before serving and its compilers run as that user', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root');
    return;
  }
  const { dir, masq, env } = await setup(t, { whocc: `id -u > "${'$'}{PROBE}"; exec gcc "$@"` });
  // The unprivileged user must reach the scripts, the masquerade dir and TMPDIR.
  await fs.chmod(dir, 0o755);
  await fs.chmod(env['TMPDIR']!, 0o1777);
  const probeDir = path.join(dir, 'probe');
  await fs.mkdir(probeDir, { mode: 0o777 });
  await fs.chmod(probeDir, 0o777);
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, PROBE: path.join(probeDir, 'uid') }, args: ['--user', 'nobody', '--sandbox=off'] });
  await d.waitFor(/privileges dropped user=nobody/);
  const r = answered(await sendRaw(d.port, encodeRequest(1, ['whocc', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(r.status, 0, r.stderr.toString());
  const nobody = (await import('node:child_process')).execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim();
  assert.equal((await fs.readFile(path.join(probeDir, 'uid'), 'utf8')).trim(), nobody);
});
