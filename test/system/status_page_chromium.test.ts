// The status page in a real browser: headless Chromium loads distccd's page while a job
// compiles, runs its script (which fetches /status.json) and shows the running job (client,
// file, compiler, phase) and the jobs that ended; a screenshot is kept under test-output/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { clientEnv, makeMasqueradeDir, run, startDistccd, tempDir } from '../support/distccd_harness';
import { httpGet, metricsAddressIn } from '../support/metrics_scrape';

/** Where screenshots stay after the run (dist/ is rebuilt from scratch, so not there). */
const OUTPUT_DIR = path.resolve(__dirname, '../../../test-output');

/** Headless Chromium with a fresh profile; resolves with its stdout once it exits. */
function chromium(profile: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/chromium', [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', ...args,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('chromium shows the running job and the recent jobs on the status page when jobs run', async (t) => {
  const root = tempDir(t, 'distkit-chromium-');
  const src = path.join(root, 'src');
  const home = path.join(root, 'home');
  const bin = path.join(root, 'bin');
  for (const d of [src, home, bin]) fs.mkdirSync(d);
  fs.writeFileSync(path.join(src, 'ok.c'), 'int ok(void) { return 1; }\n');
  fs.writeFileSync(path.join(src, 'slow.c'), 'int slow(void) { return 2; }\n');
  // A compiler that takes its time (not when the client preprocesses with it).
  fs.writeFileSync(path.join(bin, 'slowcc'), '#!/bin/sh\ncase " $* " in *" -E "*) exec gcc "$@";; esac\nsleep 10\nexec gcc "$@"\n', { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(root, 'masq'), ['gcc', 'x86_64-linux-gnu-gcc', 'slowcc']);
  const PATH = `${bin}:${process.env['PATH']}`;
  // Unboxed: slowcc, a script in this test's temp dir, sleeps through the sandbox's compiler
  // probes too (the sandbox's own tests cover wrapper compilers).
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: root, PATH }, args: ['--metrics-listen', '127.0.0.1:0', '--sandbox=off'] });
  const address = metricsAddressIn(await d.waitFor(/metrics listening on=/))!;
  const env = clientEnv(home, `127.0.0.1:${d.port}/4`, { PATH });
  for (let i = 0; i < 3; i++) assert.equal((await run('distcc', ['gcc', '-c', 'ok.c', '-o', `ok${i}.o`], { cwd: src, env })).code, 0);
  const slow = run('distcc', ['slowcc', '-c', 'slow.c', '-o', 'slow.o'], { cwd: src, env });
  // Wait until the slow job holds its slot.
  for (;;) {
    const status = JSON.parse((await httpGet(address, '/status.json')).body) as { running: Array<{ phase: string }> };
    if (status.running.some((j) => j.phase === 'compile')) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const dom = await chromium(path.join(root, 'profile-dom'), ['--dump-dom', `http://${address}/`]);
  assert.equal(dom.code, 0, dom.stderr);
  const cells = (html: string): string[] => [...html.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]!);
  const text = cells(dom.stdout);
  // The running job's row: conn, client, file, compiler, phase, elapsed.
  const at = text.indexOf('slow.c');
  assert.ok(at > 0, `the running job is listed: ${dom.stdout.slice(0, 3000)}`);
  assert.match(text[at - 1]!, /^127\.0\.0\.1:\d+$/);
  assert.equal(text[at + 1], 'slowcc');
  assert.equal(text[at + 2], 'compile');
  assert.match(text[at + 3]!, /^\d+ ms$|^\d+(\.\d)? s$/);
  assert.equal(text.filter((c) => c === 'COMPILE_OK').length, 3, 'the three ended jobs');
  assert.match(dom.stdout, /<b>1<\/b><small>compiling now<\/small>/);

  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  const shot = path.join(OUTPUT_DIR, 'distccd-status-page.png');
  fs.rmSync(shot, { force: true });
  const picture = await chromium(path.join(root, 'profile-shot'), [`--screenshot=${shot}`, '--window-size=1280,800', '--hide-scrollbars', `http://${address}/`]);
  assert.equal(picture.code, 0, picture.stderr);
  const png = fs.readFileSync(shot);
  assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
  assert.ok(png.length > 10_000, 'a picture with something in it');
  t.diagnostic(`status page screenshot: ${shot}`);
  console.log(`status page screenshot: ${shot}`);
  assert.equal((await slow).code, 0);
});
