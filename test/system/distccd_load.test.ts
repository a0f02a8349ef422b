// Bounded load on the real distccd: 64 real distcc clients at once against --jobs 4 (all succeed,
// at most 4 compilers run at once, and no job waits longer than the queue explains), and the
// leak run of test/fuzz/distcc_jobs_run.ts with 1000 jobs (10,000 in `npm run fuzz -- --target
// distcc-jobs --cases 10000`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { clientEnv, makeMasqueradeDir, run, startDistccd, tempDir } from '../support/distccd_harness';
import { runDistccJobs } from '../fuzz/distcc_jobs_run';
import { formatSummary } from '../fuzz/fuzz_target';

const CLIENTS = 64;
const JOBS = 4;

test('distccd serves 64 concurrent real clients with --jobs 4, never more than 4 compilers, each wait explained by the queue', async (t) => {
  const root = tempDir(t, 'distkit-load-');
  const bin = path.join(root, 'bin');
  await fs.mkdir(bin);
  const trace = path.join(root, 'trace');
  // The compiler the daemon runs: the real gcc, bracketed by start/end times in ns.
  await fs.writeFile(path.join(bin, 'x86_64-linux-gnu-gcc'),
    `#!/bin/sh\ns=$(date +%s%N)\n/usr/bin/x86_64-linux-gnu-gcc "$@"\nr=$?\necho "$s $(date +%s%N)" >> ${trace}\nexit $r\n`, { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(root, 'masq'));
  // Unsandboxed: the compilers write their times to the host's trace file, which the sandbox hides.
  const d = await startDistccd(t, { compilerDir: masq, args: ['--jobs', String(JOBS), '--sandbox=off'], env: { DISTCCD_PATH: `${bin}:/usr/bin:/bin`, TMPDIR: root } });
  const work = path.join(root, 'work');
  await fs.mkdir(work);
  await fs.writeFile(path.join(work, 't.c'), '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n');
  const home = path.join(root, 'home');
  await fs.mkdir(home);
  const env = clientEnv(home, `127.0.0.1:${d.port}/${CLIENTS}`);
  const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) =>
    run('distcc', ['gcc', '-c', 't.c', '-o', `t${i}.o`], { cwd: work, env, timeoutMs: 120_000 })));
  results.forEach((r, i) => assert.equal(r.code, 0, `client ${i}: ${r.stderr}`));
  for (let i = 0; i < CLIENTS; i++) assert.ok((await fs.stat(path.join(work, `t${i}.o`))).size > 0);
  await d.waitForCount(/ COMPILE_OK /, CLIENTS);

  const runs = (await fs.readFile(trace, 'utf8')).trim().split('\n').map((l) => l.split(' ').map((x) => Number(BigInt(x) / 1_000_000n)) as [number, number]);
  assert.equal(runs.length, CLIENTS);
  // At most JOBS compilers at any instant.
  const events = runs.flatMap(([s, e]) => [[s, 1], [e, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, step] of events) most = Math.max(most, (now += step));
  assert.ok(most <= JOBS, `${most} compilers ran at once`);
  // A job's time on the server (connection to answer) is its wait plus its compile; with FIFO slots
  // no wait exceeds ceil(64/4) compiles. The longest compile bounds each of them; 1 s covers
  // reading requests and writing answers on a busy 2-core machine.
  const compileMs = runs.map(([s, e]) => e - s).sort((a, b) => a - b);
  const longestCompile = compileMs.at(-1)!;
  const serverMs = d.lines.filter((l) => / COMPILE_OK /.test(l)).map((l) => Number(/ time:(\d+)ms/.exec(l)![1])).sort((a, b) => a - b);
  const bound = Math.ceil(CLIENTS / JOBS) * longestCompile + 1000;
  t.diagnostic(`compile ms median=${compileMs[CLIENTS >> 1]} max=${longestCompile}; server ms median=${serverMs[CLIENTS >> 1]} max=${serverMs.at(-1)}; bound=${bound}`);
  assert.ok(serverMs.at(-1)! <= bound, `a job took ${serverMs.at(-1)} ms on the server; ceil(${CLIENTS}/${JOBS}) x ${longestCompile} ms + 1 s = ${bound}`);
});

test('distccd leaves no temp file and no extra descriptor after 1000 jobs with failures, refusals and disconnects', async () => {
  const summary = await runDistccJobs({ cases: 1000, timeLimitMs: 60_000 });
  assert.equal(summary.cases, 1000, formatSummary(summary));
  assert.equal(summary.crashes + summary.hangs + summary.violations, 0, formatSummary(summary));
  assert.equal(summary.extra.files_left, 0);
  assert.ok(Number(summary.extra.fds_after) <= Number(summary.extra.idle_fds), formatSummary(summary));
});
