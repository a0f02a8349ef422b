// A sandbox host's template (sandbox.ts #templateOptions, sandbox_job.c build_template): the part
// of every job's root its host builds once. A job whose files lie in /tmp gets its root as that
// template plus its own mounts; any other job gets a root built from nothing over it. Either way
// the job must see what issue 21 lists and nothing else: its own files, not a concurrent job's nor
// the server's, a read-only root and /dev. The spy compiler lives outside /tmp here (a compiler
// on or around /tmp gets no template), so these jobs take the template's paths.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startDistccd } from '../support/distccd_harness';
import { childrenOf } from '../support/proc';
import { report, setup, spyRequest } from '../support/sandbox_spies';
import { sendRaw } from '../support/raw_distcc_client';
import { settledListing } from '../support/settled_listing';
import { waitUntil } from '../support/wait_until';

/** A private directory outside /tmp (os.tmpdir()), removed when the test ends. */
async function outsideTmp(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp('/var/tmp/distkit-sandbox-template-');
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The mount points of the sandbox host under `daemon` (the process whose argv is /sandbox-host alone), once it is up. */
function hostMounts(daemon: number): Promise<string[]> {
  return waitUntil(() => {
    const tree = [daemon];
    for (let i = 0; i < tree.length; i++) tree.push(...childrenOf(tree[i]!));
    for (const pid of tree) {
      if (readOr(`/proc/${pid}/cmdline`) !== '/sandbox-host\0') continue;
      const mounts = readOr(`/proc/${pid}/mountinfo`).trim().split('\n').map((l) => l.split(' ')[4]!);
      if (mounts.includes('/newroot/dev/null')) return mounts; // its template is built before it says it is ready
    }
    return undefined;
  }, 10_000, () => `a sandbox host under ${daemon} with its template`);
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

for (const where of ['in /tmp, on its host\'s template', 'outside /tmp, built from nothing over the template'] as const) {
  test(`distccd shows a job its own files only, a read-only root and /dev, when its files lie ${where}`, async (t) => {
    const s = await setup(t);
    const outside = await outsideTmp(t);
    const bin = path.join(outside, 'bin');
    await fs.mkdir(bin);
    await fs.copyFile(path.join(s.bin, 'spy'), path.join(bin, 'spy'));
    await fs.chmod(path.join(bin, 'spy'), 0o755);
    const onTemplate = where.startsWith('in /tmp');
    const tmp = onTemplate ? s.tmp : path.join(outside, 'tmp');
    if (!onTemplate) await fs.mkdir(tmp);
    const env = { ...s.env, TMPDIR: tmp, JOBDIR: tmp, DISTCCD_PATH: `${bin}:/usr/bin:/bin` };
    const d = await startDistccd(t, { compilerDir: s.masq, env });
    const holding = sendRaw(d.port, spyRequest('-DHOLD'));
    const others = await settledListing(tmp, { count: 2 }); // the first job's input and output
    assert.equal(others.length, 2, `the first job's files: ${others.join(' ')}`);
    const mounts = await hostMounts(d.child.pid!);
    assert.ok(mounts.includes(`/newroot${bin}`), `the host's template holds the compiler's directory: ${mounts.join(' ')}`);
    const a = await sendRaw(d.port, spyRequest());
    assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
    const seen = report(a.response.stderr);
    const jobDir = seen.get('ls JOBDIR') ?? [];
    assert.equal(jobDir.length, 2, `its own input and output: ${jobDir.join(' ')}`);
    assert.deepEqual(jobDir.filter((name) => others.includes(name)), [], 'none of the other job\'s');
    assert.doesNotMatch(a.response.stderr.toString(), new RegExp(s.token));
    assert.match((seen.get('cat SECRET') ?? []).join('\n'), /No such file or directory/);
    // The root: the compiler's directories (the spy's in /var, /bin/sh's in /usr), /dev, /proc,
    // /tmp, and the way to the job's files (in /tmp or /var): the same both ways.
    assert.deepEqual((seen.get('ls /') ?? []).sort(), ['bin', 'dev', 'lib', 'lib64', 'proc', 'tmp', 'usr', 'var']);
    assert.deepEqual(seen.get('ls /tmp'), onTemplate ? [path.relative('/tmp', s.dir).split('/')[0]!] : []);
    // No capability left, in any set, and no way to gain one (sandbox_job.c exec_compiler).
    assert.deepEqual((seen.get('caps') ?? []).map((l) => l.replace(/\s+/g, ' ')),
      ['CapInh: 0000000000000000', 'CapPrm: 0000000000000000', 'CapEff: 0000000000000000', 'CapBnd: 0000000000000000', 'CapAmb: 0000000000000000', 'NoNewPrivs: 1']);
    const writes = seen.get('write') ?? [];
    assert.equal(writes.length, 2, writes.join('\n'));
    for (const line of writes) assert.match(line, /Read-only file system/);
    const held = await holding;
    assert.ok(held.kind === 'answer' && held.response.status === 0);
    await d.stop();
    assert.deepEqual(await settledListing(tmp), []);
  });
}
