// Debian's real distcc 3.4 client compiles through our distccd in protocols 1 and 2 (LZO): the
// objects equal local compiles, compiler errors and server-side failures reach the user.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { clientEnv, makeMasqueradeDir, run, startDistccd, tempDir } from '../support/distccd_harness';
import { settledListing } from '../support/settled_listing';

const SOURCES: Record<string, string> = {
  'util.h': '#ifndef UTIL_H\n#define UTIL_H\nint twice(int x);\nstatic inline int sq(int x) { return x * x; }\n#endif\n',
  'util.c': '#include "util.h"\nint twice(int x) { return 2 * x; }\n',
  'main.c': '#include <stdio.h>\n#include "util.h"\nint main(void) { printf("%d\\n", twice(sq(3))); return 0; }\n',
  'hello.cpp': '#include <string>\n#include <vector>\nstd::string join(const std::vector<std::string>& v) { std::string s; for (auto& x : v) s += x; return s; }\n',
  'bad.c': 'int broken(void) { return 1 }\n',
  // About a megabyte once preprocessed: several reads per DOTI, LZO output far beyond 8x.
  'big.cpp': '#include <iostream>\n#include <map>\n#include <algorithm>\n#include <sstream>\nint count(const std::string& s) { std::map<char, int> m; for (char c : s) m[c]++; std::ostringstream o; o << m.size(); std::cout << o.str(); return (int)m.size(); }\n',
};

async function project(t: Parameters<typeof tempDir>[0]): Promise<{ src: string; home: string; masq: string; bin: string; tmp: string }> {
  const root = tempDir(t, 'distkit-client-');
  const src = path.join(root, 'src');
  await fs.mkdir(path.join(src, 'deps'), { recursive: true });
  for (const [name, text] of Object.entries(SOURCES)) await fs.writeFile(path.join(src, name), text);
  const home = path.join(root, 'home');
  await fs.mkdir(home);
  const tmp = path.join(root, 'tmp'); // the daemon's TMPDIR: empty again after every job
  await fs.mkdir(tmp);
  const masq = await makeMasqueradeDir(path.join(root, 'masq'), ['gcc', 'cc', 'g++', 'c++', 'x86_64-linux-gnu-gcc', 'x86_64-linux-gnu-g++', 'true', 'false', 'mycc']);
  // A compiler the client has but the server's DISTCCD_PATH lacks.
  const bin = path.join(root, 'bin');
  await fs.mkdir(bin);
  await fs.writeFile(path.join(bin, 'mycc'), '#!/bin/sh\nexec gcc "$@"\n', { mode: 0o755 });
  return { src, home, masq, bin, tmp };
}

for (const [protocol, suffix] of [[1, ''], [2, ',lzo']] as const) {
  test(`distccd compiles C and C++ for the real client like a local compile when protocol ${protocol} is used`, async (t) => {
    const { src, home, masq, tmp } = await project(t);
    const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp } });
    const env = clientEnv(home, `127.0.0.1:${d.port}/4${suffix}`);
    const distcc = (args: string[]) => run('distcc', args, { cwd: src, env });
    const local = async (args: string[]) => {
      const r = await run(args[0]!, args.slice(1), { cwd: src });
      assert.equal(r.code, 0, r.stderr);
    };
    const same = async (a: string, b: string) => assert.deepEqual(await fs.readFile(path.join(src, a)), await fs.readFile(path.join(src, b)), `${a} differs from ${b}`);

    for (const [args, out] of [
      [['gcc', '-c', 'main.c', '-o', 'main.o'], 'main.o'],
      [['gcc', '-g', '-O2', '-Wall', '-c', 'util.c', '-o', 'util-g.o'], 'util-g.o'],
      [['g++', '-O1', '-c', 'hello.cpp', '-o', 'hello.o'], 'hello.o'],
      [['g++', '-c', 'big.cpp', '-o', 'big.o'], 'big.o'],
      [['gcc', '-S', 'main.c', '-o', 'main.s'], 'main.s'],
      [['gcc', '-MD', '-MF', 'deps/main.d', '-c', 'main.c', '-o', 'md.o'], 'md.o'],
    ] as const) {
      const r = await distcc([...args]);
      assert.equal(r.code, 0, `distcc ${args.join(' ')}: ${r.stderr}`);
      if ((args as readonly string[]).includes('-MF')) assert.match(await fs.readFile(path.join(src, 'deps/main.d'), 'utf8'), /^\S+\.o: main\.c .*util\.h/s);
      const localOut = out.replace(/\.(\w+)$/, '.local.$1');
      await local([...args.slice(0, -1), localOut]);
      await same(out, localOut);
    }

    // No -o: the object lands next to the source's basename, as gcc would put it.
    const implied = await distcc(['gcc', '-c', 'util.c']);
    assert.equal(implied.code, 0, implied.stderr);
    await local(['gcc', '-c', 'util.c', '-o', 'util.local.o']);
    await same('util.o', 'util.local.o');

    const lines = await d.waitFor(/COMPILE_OK .* x86_64-linux-gnu-g\+\+ hello\.cpp$/);
    assert.match(lines, new RegExp(`^distccd\\[\\d+\\] \\(dcc_job_summary\\) client: 127\\.0\\.0\\.1:\\d+ COMPILE_OK exit:0 sig:0 core:0 ret:0 time:\\d+ms`));
    await d.waitForCount(/ COMPILE_OK /, 7);
    assert.deepEqual(await settledListing(tmp), [], 'every temp file was removed');
  });

  test(`distccd reports compiler errors and server-side failures to the real client when protocol ${protocol} is used`, async (t) => {
    const { src, home, masq, bin, tmp } = await project(t);
    const d = await startDistccd(t, { compilerDir: masq, env: { DISTCCD_PATH: '/usr/bin:/bin', TMPDIR: tmp } });
    const env = clientEnv(home, `127.0.0.1:${d.port}/4${suffix}`, { PATH: `${bin}:${process.env['PATH']}` });
    const distcc = (args: string[]) => run('distcc', args, { cwd: src, env });

    const bad = await distcc(['gcc', '-c', 'bad.c', '-o', 'bad.o']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bad\.c:1:\d+: error: expected .;./);
    await assert.rejects(fs.access(path.join(src, 'bad.o')));
    await d.waitFor(/COMPILE_ERROR exit:1 sig:0 core:0 ret:0 time:\d+ms x86_64-linux-gnu-gcc bad\.c$/);

    const missing = await distcc(['mycc', '-c', 'util.c', '-o', 'mycc.o']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /distccd\[\d+\] ERROR: failed to exec mycc: ENOENT/);
    await d.waitFor(/COMPILE_ERROR exit:110 .* ret:110 .* mycc util\.c$/);

    // `true` succeeds and writes nothing: the client gets an empty object.
    const yes = await distcc(['true', '-c', 'util.c', '-o', 'true.o']);
    assert.equal(yes.code, 0, yes.stderr);
    assert.equal((await fs.readFile(path.join(src, 'true.o'))).length, 0);
    // `false` fails in the client's own preprocessing: it drops the connection before DOTI.
    const no = await distcc(['false', '-c', 'util.c', '-o', 'false.o']);
    assert.notEqual(no.code, 0);
    await d.waitFor(/job failed .*reason="client closed the connection while we waited for DOTI"/);
    await d.waitFor(/CLI_DISCONN exit:0 sig:0 core:0 ret:107/);

    // Still serving after all of that.
    const ok = await distcc(['gcc', '-c', 'util.c', '-o', 'after.o']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await settledListing(tmp), [], 'every temp file was removed');
  });
}
