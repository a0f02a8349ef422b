// Job control in our distccd: --job-lifetime kills and answers STAT 118<<8, a client that gives up
// gets its compiler's whole process group killed, an exec failure answers 110<<8, and --jobs
// queues extra jobs instead of refusing them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd, tempDir } from '../support/distccd_harness';
import { encodeRequest, sendRaw, type RawAnswer } from '../support/raw_distcc_client';

const SOURCE = 'int f(int x) { return x + 1; }\n';

function answered(a: RawAnswer): Extract<RawAnswer, { kind: 'answer' }>['response'] {
  assert.equal(a.kind, 'answer', JSON.stringify(a));
  return (a as Extract<RawAnswer, { kind: 'answer' }>).response;
}

async function setup(t: Parameters<typeof tempDir>[0], scripts: Record<string, string>): Promise<{ dir: string; masq: string; env: NodeJS.ProcessEnv }> {
  const dir = await tempDir(t, 'distkit-jobs-');
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  for (const [name, body] of Object.entries(scripts)) await fs.writeFile(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'), [...Object.keys(scripts), 'nosuchcc', 'gcc']);
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
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, PIDFILE: pidFile }, args: ['--job-lifetime', '1'] });
  const started = Date.now();
  const r = answered(await sendRaw(d.port, encodeRequest(2, ['slowcc', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.ok(Date.now() - started < 10_000);
  assert.equal(r.status, 118 << 8);
  assert.match(r.stderr.toString(), new RegExp(`^working\\ndistccd\\[${d.child.pid}\\] ERROR: Compilation takes too long, timeout\\.\\n$`));
  assert.equal(r.object.length, 0);
  await d.waitFor(/COMPILE_TIMEOUT exit:118 sig:0 core:0 ret:118/);
  assert.ok(await waitGone(Number(await fs.readFile(pidFile, 'utf8')), 5000));
  assert.deepEqual(await fs.readdir(env['TMPDIR']!), []);
});

test('distccd kills the compiler process group when the client disconnects while it compiles', async (t) => {
  // The "compiler" starts a grandchild in its group: both must die.
  const { dir, masq, env } = await setup(t, { hangcc: `sleep 30 & echo $! > "${'$'}{PIDFILE}.child"; echo $$ > "${'$'}{PIDFILE}"; wait` });
  const pidFile = path.join(dir, 'hang.pid');
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, PIDFILE: pidFile } });
  const a = await sendRaw(d.port, encodeRequest(1, ['hangcc', '-c', 't.c', '-o', 't.o'], SOURCE), { abandonAfterMs: 1000 });
  assert.equal(a.kind, 'closed');
  await d.waitFor(/CLI_DISCONN exit:107 sig:0 core:0 ret:107/);
  assert.ok(await waitGone(Number(await fs.readFile(pidFile, 'utf8')), 5000), 'the compiler is killed');
  assert.ok(await waitGone(Number(await fs.readFile(`${pidFile}.child`, 'utf8')), 5000), 'its process group is killed');
  assert.deepEqual(await fs.readdir(env['TMPDIR']!), []);
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
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, TRACE: trace }, args: ['--jobs', '1'] });
  const answers = await Promise.all([0, 1, 2].map(() => sendRaw(d.port, encodeRequest(2, ['queuecc', '-c', 't.c', '-o', 't.o'], SOURCE))));
  for (const a of answers) assert.equal(answered(a).status, 0);
  const events = (await fs.readFile(trace, 'utf8')).trim().split('\n').map((l) => l.split(' ')[0]);
  assert.deepEqual(events, ['start', 'end', 'start', 'end', 'start', 'end']);
  await d.waitForCount(/ COMPILE_OK /, 3);
});

test('distccd runs compilers with --nice added to its priority, in TMPDIR, with stdin /dev/null and the safeguard set', async (t) => {
  const { dir, masq, env } = await setup(t, { probecc: `{ nice; pwd; cat; echo "safeguard=$_DISTCC_SAFEGUARD"; } > "${'$'}{PROBE}"; exec gcc "$@"` });
  const probe = path.join(dir, 'probe');
  const d = await startDistccd(t, { compilerDir: masq, env: { ...env, PROBE: probe }, args: ['--nice', '7'] });
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
