// Protocol 3 from the real pump client (upstream distcc built by test/support/real_pump.ts: the
// include server, `pump` and `distcc`) to our distccd. Every job must show up in our log as
// protocol 3; the client runs with DISTCC_TESTING_INCLUDE_SERVER=1, so it fails rather than
// preprocess locally and send protocol 2. The .d files are compared with what Debian's C distccd
// gives the same client, and with a local gcc.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd, tempDir, type RunningDistccd } from '../support/distccd_harness';
import { assertPumped, realPump, runPump, serveCDistccd, startIncludeServer } from '../support/real_pump';
import { settledListing } from '../support/settled_listing';

const exec = promisify(execFile);

interface Setup {
  readonly dir: string;
  readonly src: string;
  readonly tmp: string;
  readonly home: string;
  readonly d: RunningDistccd;
}

async function setup(t: TestContext): Promise<Setup> {
  await realPump(); // built (or found built) before any timer of this test starts counting
  const dir = await fs.realpath(tempDir(t, 'distkit-realpump-'));
  const src = path.join(dir, 'src');
  const tmp = path.join(dir, 'tmp');
  const home = path.join(dir, 'home');
  await Promise.all([fs.mkdir(path.join(src, 'include'), { recursive: true }), fs.mkdir(tmp), fs.mkdir(home)]);
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp } });
  return { dir, src, tmp, home, d };
}

/** Our log says each of `n` jobs came in protocol 3 and compiled, and none came in another protocol. */
async function assertProtocol3Jobs(d: RunningDistccd, n: number): Promise<void> {
  await d.waitForCount(/COMPILE_OK/, n);
  assert.equal(d.lines.filter((l) => / request .*protocol=3 /.test(l)).length, n, d.lines.join('\n'));
  assert.equal(d.lines.filter((l) => / request .*protocol=[12] /.test(l)).length, 0, d.lines.join('\n'));
}

const MAKEFILE = `OBJS = main.o shapes.o words.o
all: $(OBJS)
%.o: %.c
\t$(DISTCC) gcc -Iinclude -idirafter /usr/include/x86_64-linux-gnu/bits -O2 -c $< -o $@
%.o: %.cpp
\t$(DISTCC) g++ -Iinclude -O2 -c $< -o $@
`;

test('distccd builds C and C++ files from the real pump client in protocol 3 when objects equal a local compile', async (t) => {
  const { dir, src, tmp, home, d } = await setup(t);
  const { distcc } = await realPump();
  await fs.writeFile(path.join(src, 'include/shapes.h'), '#ifdef __cplusplus\nextern "C" {\n#endif\nint area(int w, int h);\nint count_words(const char *s);\n#ifdef __cplusplus\n}\n#endif\n');
  await fs.writeFile(path.join(src, 'main.c'), '#include <wordsize.h>\n#include <stdio.h>\n#include "shapes.h"\nint main(void) { printf("%d %d %d\\n", area(6, 7), count_words("one two three"), __WORDSIZE); return 0; }\n');
  await fs.writeFile(path.join(src, 'shapes.c'), '#include <stdlib.h>\n#include "shapes.h"\nint area(int w, int h) { return abs(w * h); }\n');
  await fs.writeFile(path.join(src, 'words.cpp'), '#include <sstream>\n#include <string>\n#include <vector>\n#include "shapes.h"\n' +
    'extern "C" int count_words(const char *s) { std::istringstream in{std::string(s)}; std::vector<std::string> w; for (std::string x; in >> x;) w.push_back(x); return static_cast<int>(w.size()); }\n');
  await fs.writeFile(path.join(src, 'Makefile'), MAKEFILE);
  assertPumped(await runPump(['make', '-s', '-j2', `DISTCC=${distcc}`], { cwd: src, port: d.port, home }));
  await assertProtocol3Jobs(d, 3);
  // Compiled in the sandbox (the default), where the tree stands at the client's own paths.
  await d.waitFor(/sandbox mode=auto bwrap=/);
  const local = path.join(dir, 'local');
  await fs.mkdir(local);
  const c = ['gcc', '-Iinclude', '-idirafter', '/usr/include/x86_64-linux-gnu/bits'];
  for (const [compiler, file] of [[c, 'main.c'], [c, 'shapes.c'], [['g++', '-Iinclude'], 'words.cpp']] as const) {
    const object = file.replace(/\.c(pp)?$/, '.o');
    await exec(compiler[0]!, [...compiler.slice(1), '-O2', '-c', file, '-o', path.join(local, object)], { cwd: src });
    assert.deepEqual(await fs.readFile(path.join(src, object)), await fs.readFile(path.join(local, object)), `${file}: pump object equals the local one`);
  }
  await exec('g++', ['main.o', 'shapes.o', 'words.o', '-o', path.join(dir, 'prog')], { cwd: src });
  assert.equal((await exec(path.join(dir, 'prog'), [])).stdout, '42 3 64\n');
  assert.deepEqual(await settledListing(tmp), [], 'the job trees and temp files are gone');
});

/** A .d rule as make reads it: the targets and the prerequisites, line breaks and layout aside. */
function rule(depfile: string): { targets: string; prerequisites: string[] } {
  const [targets, rest] = depfile.replace(/\\\n/g, ' ').split(/:(?:\s|$)/, 2) as [string, string];
  return { targets: targets.trim(), prerequisites: rest.split(/\n/)[0]!.trim().split(/\s+/) };
}

// The user's target options, the targets a local gcc writes (ours must write the same), and
// those Debian's C distccd writes for the same client. They agree for every single target. Given
// several, C takes out the first separate -MT (src/serve.c dcc_convert_mt_to_dotd_target) and
// its .d file loses that target.
const MT_CASES: ReadonlyArray<{ options: string[]; targets: string; c: string }> = [
  { options: ['-MT', 'target'], targets: 'target', c: 'target' },
  { options: ['-MTtarget'], targets: 'target', c: 'target' },
  { options: ['-MQ', 'target'], targets: 'target', c: 'target' },
  { options: ['-MQtarget'], targets: 'target', c: 'target' },
  { options: ['-MQ', 'a$b'], targets: 'a$$b', c: 'a$$b' },
  { options: [], targets: 'x.o', c: 'x.o' },
  { options: ['-MTfirst', '-MTsecond'], targets: 'first second', c: 'first second' },
  { options: ['-MT', 'first', '-MT', 'second'], targets: 'first second', c: 'second' },
  { options: ['-MT', 'first', '-MQ', 'second'], targets: 'first second', c: 'second' },
  { options: ['-MTfirst', '-MT', 'second'], targets: 'first second', c: 'first' },
];

test('distccd names the user\'s -MT and -MQ targets in the .d file as gcc does, and as C distccd does for one, when the real pump client sends them', async (t) => {
  const { src, tmp, home, d } = await setup(t);
  const c = await serveCDistccd(t);
  await fs.writeFile(path.join(src, 'include/answer.h'), '#define ANSWER 42\n');
  await fs.writeFile(path.join(src, 't.c'), '#include <stdio.h>\n#include "answer.h"\nint main(void) { printf("%d\\n", ANSWER); return 0; }\n');
  const { distcc } = await realPump();
  const includeServer = await startIncludeServer(t, home);
  const depfileFrom = async (port: number, options: string[]): Promise<string> => {
    await fs.rm(path.join(src, 'x.d'), { force: true });
    assertPumped(await runPump([distcc, 'gcc', '-Iinclude', '-MD', '-MF', 'x.d', ...options, '-c', 't.c', '-o', 'x.o'], { cwd: src, port, home, includeServer }));
    return fs.readFile(path.join(src, 'x.d'), 'utf8');
  };
  for (const [i, { options, targets, c: cTargets }] of MT_CASES.entries()) {
    const what = options.join(' ') || 'no target option';
    const ours = await depfileFrom(d.port, options);
    const theirs = await depfileFrom(c.port, options);
    await assertProtocol3Jobs(d, i + 1);
    await exec('gcc', ['-Iinclude', '-MD', '-MF', 'local.d', ...options, '-c', 't.c', '-o', 'x.o'], { cwd: src });
    const local = await fs.readFile(path.join(src, 'local.d'), 'utf8');
    // Where gcc breaks the lines depends on the length of the server's temp paths: compare the rules.
    assert.deepEqual(rule(ours), rule(local), `${what}: ours\n${ours}\nlocal\n${local}`);
    assert.equal(rule(ours).targets, targets, `${what}: ours\n${ours}`);
    assert.deepEqual(rule(theirs), { targets: cTargets, prerequisites: rule(local).prerequisites }, `${what}: C's\n${theirs}`);
  }
  assert.match(c.log(), /got DIST00000003/, 'the C server got protocol 3 too');
  assert.doesNotMatch(c.log(), /got DIST0000000[12]/);
  assert.deepEqual(await settledListing(tmp), []);
});

test('distccd gives the real pump client -g objects and a .d file with its own paths when compiled in a job tree', async (t) => {
  const { dir, src, tmp, home, d } = await setup(t);
  const { distcc } = await realPump();
  await fs.mkdir(path.join(src, 'out'));
  await fs.writeFile(path.join(src, 'include/answer.h'), '#define ANSWER 42\nstatic inline int answer(void) { return ANSWER; }\n');
  await fs.writeFile(path.join(src, 'main.c'), '#include <stdio.h>\n#include "answer.h"\nint main(void) { printf("%d\\n", answer()); return 0; }\n');
  const options = ['-g', `-I${src}/include`, '-MD', '-c', 'main.c'];
  assertPumped(await runPump([distcc, 'gcc', ...options, '-o', 'out/main.o'], { cwd: src, port: d.port, home }));
  await assertProtocol3Jobs(d, 1);
  await d.waitFor(/COMPILE_OK exit:0 sig:0 core:0 ret:0 time:\d+ms x86_64-linux-gnu-gcc main\.c$/);
  const depfile = await fs.readFile(path.join(src, 'out/main.d'), 'utf8');
  assert.match(depfile, /^out\/main\.o: main\.c .*\/include\/answer\.h/s);
  assert.ok(depfile.includes(`${src}/include/answer.h`), depfile);
  assert.ok(!depfile.includes(tmp), 'no temp path in the .d file');
  const object = path.join(src, 'out/main.o');
  const { stdout: dump } = await exec('readelf', ['--debug-dump=info,str,line', object], { maxBuffer: 64 << 20 });
  assert.ok(!dump.includes(tmp), 'no server temp path in the debug info');
  assert.ok(!dump.includes('distccd'), 'no job tree name in the debug info');
  assert.ok(dump.includes(src), 'the client directory is what the debugger sees');
  assert.ok(dump.includes(`${src}/include`), 'the header directory is named as on the client');
  // Apart from the debug sections, the object is the local one.
  const local = path.join(dir, 'local.o');
  await exec('gcc', [...options, '-o', local], { cwd: src });
  const stripped = async (o: string): Promise<Buffer> => { await exec('objcopy', ['--strip-debug', o, `${o}.s`]); return fs.readFile(`${o}.s`); };
  assert.deepEqual(await stripped(object), await stripped(local));
  await fs.rm(`${object}.s`);
  assert.deepEqual(await settledListing(tmp), [], 'the job tree and temp files are gone');
});
