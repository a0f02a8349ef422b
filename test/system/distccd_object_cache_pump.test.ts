// The object cache with the real pump client (protocol 3): a hit answers the object and the .d
// file, in the client's form, byte for byte as the compile did and as a fresh compile does; a
// changed header or define is a miss; a source that reads the server's clock (__TIME__) is never
// answered from the cache; a corrupt entry is a miss and the job succeeds.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd, tempDir } from '../support/distccd_harness';
import { assertPumped, realPump, runPump, startIncludeServer } from '../support/real_pump';

async function setup(t: TestContext) {
  const { distcc } = await realPump();
  const dir = await fs.realpath(tempDir(t, 'distkit-objcache-pump-'));
  const src = path.join(dir, 'src');
  const tmp = path.join(dir, 'tmp');
  const home = path.join(dir, 'home');
  const cache = path.join(dir, 'cache');
  for (const d of [src, path.join(src, 'include'), tmp, home]) await fs.mkdir(d);
  await fs.writeFile(path.join(src, 'include/answer.h'), '#define ANSWER 42\nstatic inline int answer(void) { return ANSWER; }\n');
  await fs.writeFile(path.join(src, 'main.c'), '#include <stdio.h>\n#include "answer.h"\nint main(void) { int unused; printf("%d\\n", answer()); return 0; }\n');
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp }, args: ['--cache-dir', cache] });
  // The include server reads each header once for its life (one build): a changed header needs a new one.
  let includeServer = await startIncludeServer(t, home);
  const newBuild = async () => {
    includeServer = await startIncludeServer(t, home);
  };
  let jobs = 0;
  /** Compiles main.c with `options` through the pump client; the job's cache state and what the client wrote. */
  const compile = async (options: readonly string[] = [], output = 'out/main.o') => {
    await fs.rm(path.join(src, 'out'), { recursive: true, force: true });
    await fs.mkdir(path.join(src, 'out'));
    const r = await runPump([distcc, 'gcc', '-g', '-O2', '-Wall', '-Iinclude', '-MD', ...options, '-c', 'main.c', '-o', output], { cwd: src, port: d.port, home, includeServer });
    assertPumped(r);
    jobs++;
    await d.waitForCount(/dcc_job_summary/, jobs);
    const line = d.lines.filter((l) => l.includes('dcc_job_summary'))[jobs - 1]!;
    assert.match(line, / COMPILE_OK exit:0 .* main\.c cache:\w+$/);
    assert.equal(d.lines.filter((l) => / request .*protocol=3 /.test(l)).length, jobs, 'every job came in protocol 3');
    return {
      state: / cache:(\w+)$/.exec(line)![1]!,
      stderr: r.stderr,
      object: await fs.readFile(path.join(src, output)),
      depfile: await fs.readFile(path.join(src, output.replace(/\.o$/, '.d')), 'utf8'),
    };
  };
  const entries = async () => {
    const out: string[] = [];
    for (const sub of (await fs.readdir(cache)).filter((s) => /^[0-9a-f]{2}$/.test(s))) for (const name of await fs.readdir(path.join(cache, sub))) out.push(path.join(cache, sub, name));
    return out;
  };
  return { src, tmp, compile, entries, newBuild };
}

test('distccd answers a repeated pump job from its cache with the object and .d file of the compile when the real pump client sends it', async (t) => {
  const { tmp, compile, entries } = await setup(t);
  const miss = await compile();
  assert.equal(miss.state, 'miss');
  assert.match(miss.stderr, /unused variable/);
  assert.match(miss.depfile, /^out\/main\.o: main\.c .*include\/answer\.h/s);
  // A tree or a file made or removed in TMPDIR moves its mtime: a hit leaves it as it was.
  const tmpBefore = await fs.stat(tmp);
  const hit = await compile();
  assert.equal(hit.state, 'hit');
  assert.equal((await fs.stat(tmp)).mtimeMs, tmpBefore.mtimeMs, 'a hit made a job tree or a temp file');
  assert.deepEqual(hit.object, miss.object);
  assert.equal(hit.depfile, miss.depfile);
  assert.equal(hit.stderr, miss.stderr);
  for (const file of await entries()) await fs.unlink(file);
  const fresh = await compile();
  assert.equal(fresh.state, 'miss');
  assert.deepEqual(fresh.object, miss.object, 'two fresh compiles give the same bytes');
  assert.equal(fresh.depfile, miss.depfile);
});

test('distccd misses its cache when a header or a define changes, and never caches __TIME__, when the real pump client sends the job', async (t) => {
  const { src, compile, entries, newBuild } = await setup(t);
  assert.equal((await compile()).state, 'miss');
  assert.equal((await compile()).state, 'hit');
  await fs.writeFile(path.join(src, 'include/answer.h'), '#define ANSWER 4300\nstatic inline int answer(void) { return ANSWER; }\n');
  await newBuild();
  assert.equal((await compile()).state, 'miss', 'a changed header is a miss');
  assert.equal((await compile()).state, 'hit');
  assert.equal((await compile(['-DEXTRA=1'])).state, 'miss', 'a define is a miss');
  // Another object name is another .d target.
  const other = await compile([], 'out/other.o');
  assert.equal(other.state, 'miss', 'another output name is a miss');
  assert.match(other.depfile, /^out\/other\.o: main\.c/);
  // A damaged entry: a miss, and the job still succeeds with the right object.
  const good = await compile(['-DEXTRA=1']);
  assert.equal(good.state, 'hit');
  for (const file of await entries()) {
    const bytes = await fs.readFile(file);
    await fs.writeFile(file, bytes.subarray(0, bytes.length - 1));
  }
  const after = await compile(['-DEXTRA=1']);
  assert.equal(after.state, 'miss');
  assert.deepEqual(after.object, good.object);
  await fs.writeFile(path.join(src, 'main.c'), '#include <stdio.h>\n#include "answer.h"\nint main(void) { puts(__TIME__); return answer(); }\n');
  await newBuild();
  assert.equal((await compile()).state, 'off');
  assert.equal((await compile()).state, 'off', 'a job that reads the clock is never answered from the cache');
});
