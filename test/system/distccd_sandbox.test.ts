// The compile sandbox (issue 21) against the real clients: a job gets its object, never a file of
// the server's or of another job. The server-only file is planted by each test and readable by
// the daemon's user; it is asked for the way a client can really ask: `.incbin` in the source
// (the assembler reads it on the server; neither cpp on the client nor the include server
// follows it), in protocols 1 and 2 (real distcc), 3 (real pump) and over inetd. Each proof runs
// with --sandbox=off too, where the same request does get the file back: the test can fail.
// A "spy" compiler (a script in DISTCCD_PATH) reports what a job sees from inside.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { clientEnv, DISTCCD, KEEP_ROOT, makeMasqueradeDir, MASQUERADE_NAMES, run, runDistccd, startDistccd, type RunningDistccd } from '../support/distccd_harness';
import { gone, HANG, hostListeners, incbin, leaked, NETSPY, NSSPY, report, setup, spyRequest, type Setup } from '../support/sandbox_spies';
import { encodeRequest, sendRaw } from '../support/raw_distcc_client';
import { assertPumped, realPump, runPump } from '../support/real_pump';
import { settledListing } from '../support/settled_listing';

const exec = promisify(execFile);

function daemon(t: TestContext, s: Setup, args: readonly string[] = []): Promise<RunningDistccd> {
  return startDistccd(t, { compilerDir: s.masq, env: s.env, args });
}

for (const [protocol, suffix] of [[1, ''], [2, ',lzo']] as const) {
  test(`distccd gives no byte of a server-only file when the real client asks for it by .incbin in protocol ${protocol}`, async (t) => {
    const s = await setup(t);
    await fs.writeFile(path.join(s.dir, 'evil.c'), incbin(s.secret));
    for (const mode of ['auto', 'off'] as const) {
      const d = await daemon(t, s, [`--sandbox=${mode}`]);
      const object = path.join(s.dir, `evil-${mode}.o`);
      const r = await run('distcc', ['gcc', '-c', 'evil.c', '-o', object], { cwd: s.dir, env: clientEnv(s.dir, `127.0.0.1:${d.port}/4${suffix}`) });
      if (mode === 'auto') {
        await d.waitFor(/sandbox mode=auto bwrap=/);
        assert.notEqual(r.code, 0, 'the assembler finds no such file in the sandbox');
        assert.match(r.stderr, /secret\.txt/);
        assert.equal(await leaked(s.token, r.stdout + r.stderr, object), false, r.stderr);
      } else {
        // The control: unconfined, the same request reads the file (the hole the sandbox closes).
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await leaked(s.token, '', object), true);
      }
      await d.stop();
    }
    assert.deepEqual(await settledListing(s.tmp), []);
  });
}

test('distccd gives no byte of a server-only file when the real pump client asks for it by .incbin in protocol 3', async (t) => {
  await realPump();
  const s = await setup(t);
  const { distcc } = await realPump();
  const src = path.join(s.dir, 'src');
  const home = path.join(s.dir, 'home');
  await Promise.all([fs.mkdir(src), fs.mkdir(home)]);
  await fs.writeFile(path.join(src, 'evil.c'), incbin(s.secret));
  for (const mode of ['auto', 'off'] as const) {
    const d = await daemon(t, s, [`--sandbox=${mode}`]);
    const object = path.join(src, `evil-${mode}.o`);
    const r = await runPump([distcc, 'gcc', '-c', 'evil.c', '-o', object], { cwd: src, port: d.port, home });
    await d.waitFor(/ request .*protocol=3 /);
    if (mode === 'auto') {
      assert.notEqual(r.code, 0);
      assert.equal(await leaked(s.token, r.stdout + r.stderr, object), false, r.stderr);
    } else {
      assertPumped(r);
      assert.equal(await leaked(s.token, '', object), true);
    }
    await d.stop();
  }
});

test('distccd --inetd gives no byte of a server-only file to the real client over ssh pipes, checking the sandbox once for all its processes', async (t) => {
  const s = await setup(t);
  const log = path.join(s.dir, 'distccd.log');
  const ssh = path.join(s.dir, 'fake-ssh');
  // The check passed by the first process is remembered there for the next (probe_cache.ts).
  const runtime = path.join(s.dir, 'run');
  const envs = Object.entries({ ...s.env, RUNTIME_DIRECTORY: runtime }).map(([k, v]) => `${k}='${v}'`).join(' ');
  await fs.writeFile(ssh, `#!/bin/sh\n${envs} exec '${process.execPath}' '${DISTCCD}' --inetd --no-cache --compiler-dir '${s.masq}' --log-file '${log}' --log-level debug ${KEEP_ROOT.join(' ')}\n`, { mode: 0o755 });
  await fs.writeFile(path.join(s.dir, 'evil.c'), incbin(s.secret));
  await fs.writeFile(path.join(s.dir, 'good.c'), 'int g(int x) { return x * 2; }\n');
  const env = clientEnv(s.dir, '@localhost/4,lzo', { DISTCC_SSH: ssh });
  const bad = await run('distcc', ['gcc', '-c', 'evil.c', '-o', 'evil.o'], { cwd: s.dir, env });
  assert.notEqual(bad.code, 0);
  assert.equal(await leaked(s.token, bad.stdout + bad.stderr, path.join(s.dir, 'evil.o')), false, bad.stderr);
  const good = await run('distcc', ['gcc', '-O2', '-c', 'good.c', '-o', 'good.o'], { cwd: s.dir, env });
  assert.equal(good.code, 0, good.stderr);
  await exec('gcc', ['-O2', '-c', 'good.c', '-o', 'local.o'], { cwd: s.dir });
  assert.deepEqual(await fs.readFile(path.join(s.dir, 'good.o')), await fs.readFile(path.join(s.dir, 'local.o')));
  const text = await fs.readFile(log, 'utf8');
  assert.match(text, /mode kind=inetd/);
  assert.deepEqual(text.match(/sandbox mode=auto bwrap=\S+ check=\w+/g)?.map((l) => l.split('check=')[1]), ['passed', 'remembered']);
  // So are the compiler's mounts the first job found, for the second (probe_cache.ts mountsMemory).
  const found = JSON.parse(await fs.readFile(path.join(runtime, `distkit-sandbox-mounts-${process.geteuid!()}`, 'mounts.json'), 'utf8')) as { found: Record<string, { dirs: string[] }> };
  assert.deepEqual(Object.values(found.found).map((f) => f.dirs), [['/usr']], 'the one compiler, in /usr: /usr whole (--inetd)');
  assert.deepEqual(await settledListing(s.tmp), []);
});

test('distccd shows a job its own files only, not a concurrent job\'s nor the server\'s, when the sandbox is on', async (t) => {
  const s = await setup(t);
  for (const mode of ['auto', 'off'] as const) {
    const d = await daemon(t, s, [`--sandbox=${mode}`]);
    const holding = sendRaw(d.port, spyRequest('-DHOLD'));
    const others = await settledListing(s.tmp, { count: 2 }); // the first job's input and output
    assert.equal(others.length, 2, `the first job's files: ${others.join(' ')}`);
    const a = await sendRaw(d.port, spyRequest());
    assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
    const seen = report(a.response.stderr);
    const jobDir = seen.get('ls JOBDIR') ?? [];
    if (mode === 'auto') {
      assert.equal(jobDir.length, 2, `its own input and output: ${jobDir.join(' ')}`);
      assert.deepEqual(jobDir.filter((name) => others.includes(name)), [], 'none of the other job\'s');
      assert.doesNotMatch(a.response.stderr.toString(), new RegExp(s.token));
      assert.match((seen.get('cat SECRET') ?? []).join('\n'), /No such file or directory/);
      assert.deepEqual(seen.get('ls /tmp'), path.dirname(s.tmp).startsWith('/tmp/') ? [path.relative('/tmp', s.dir).split('/')[0]!] : []);
      // Only its bound files and the capped /tmp are writable: the root bwrap builds (with /dev
      // and the directories above the job's files) is no uncapped tmpfs to fill.
      const writes = seen.get('write') ?? [];
      assert.equal(writes.length, 2, writes.join('\n'));
      for (const line of writes) assert.match(line, /Read-only file system/);
      for (const hidden of ['home', 'root', 'srv', 'var', 'etc']) assert.ok(!(seen.get('ls /') ?? []).includes(hidden), `no /${hidden}: ${seen.get('ls /')?.join(' ')}`);
    } else {
      assert.deepEqual(jobDir.filter((name) => others.includes(name)).sort(), others, 'unconfined, it sees the other job\'s files');
      assert.match(a.response.stderr.toString(), new RegExp(s.token));
      assert.deepEqual(seen.get('write'), ['unconfined']); // the spy writes to / only when boxed
    }
    const held = await holding;
    assert.ok(held.kind === 'answer' && held.response.status === 0);
    await d.stop();
  }
});

test('distccd gives a job no network: neither the host\'s loopback nor its abstract unix sockets, when the sandbox is on', async (t) => {
  const s = await setup(t);
  await fs.writeFile(path.join(s.dir, 'netspy.c'), NETSPY);
  await exec('gcc', ['-O1', '-o', path.join(s.bin, 'netspy'), path.join(s.dir, 'netspy.c')]);
  const masq = await makeMasqueradeDir(path.join(s.dir, 'masq-net'), [...MASQUERADE_NAMES, 'netspy']);
  const { accepted, env: netEnv } = await hostListeners(t);
  const env = { ...s.env, ...netEnv };
  for (const mode of ['auto', 'off'] as const) {
    accepted.length = 0;
    const d = await startDistccd(t, { compilerDir: masq, env, args: [`--sandbox=${mode}`] });
    const a = await sendRaw(d.port, encodeRequest(1, ['netspy', '-c', 't.c', '-o', 't.o'], 'int x;\n'));
    assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
    const said = a.response.stderr.toString();
    if (mode === 'auto') {
      assert.match(said, /^tcp (?!connected).+$/m, said);
      assert.match(said, /^abstract (?!connected).+$/m, said);
      assert.deepEqual(accepted, [], 'no connection reached the host');
    } else {
      // Unconfined, both connect: the check above can fail.
      assert.match(said, /^tcp connected$/m, said);
      assert.match(said, /^abstract connected$/m, said);
    }
    await d.stop();
  }
});

test('distccd kills a sandboxed compiler and everything it started when --job-lifetime runs out or the client leaves', async (t) => {
  const s = await setup(t);
  const d = await daemon(t, s, ['--job-lifetime', '1']);
  const r = await sendRaw(d.port, spyRequest('-DHANG'));
  assert.ok(r.kind === 'answer' && r.response.status === 118 << 8, JSON.stringify(r));
  assert.ok(await gone(HANG, 5000), 'the sandboxed sleep is killed');
  const e = await daemon(t, s); // no lifetime: only the client's leaving ends this one
  const left = sendRaw(e.port, spyRequest('-DHANG'), { abandonAfterMs: 1500 });
  assert.equal((await left).kind, 'closed');
  await e.waitFor(/CLI_DISCONN exit:107/);
  assert.ok(await gone(HANG, 5000), 'killed when the client left');
  assert.deepEqual(await settledListing(s.tmp), []);
});

test('distccd --sandbox=required refuses to start, exit 112, when bubblewrap is missing or does not work', async (t) => {
  const s = await setup(t);
  const base = ['--daemon', '--no-detach', '--port', '0', '--allow', '127.0.0.1', '--compiler-dir', s.masq, ...KEEP_ROOT];
  const broken = await runDistccd([...base, '--sandbox=required', '--bwrap', '/bin/false']);
  assert.equal(broken.code, 112, broken.stderr);
  assert.match(broken.stderr, /start failed exit=112 reason="\/bin\/false cannot build a sandbox here \(exit 1\); user namespaces may be off/);
  const missing = await runDistccd([...base, '--sandbox=required'], { env: { PATH: path.join(s.dir, 'nothing') } });
  assert.equal(missing.code, 112, missing.stderr);
  assert.match(missing.stderr, /start failed exit=112 reason="bubblewrap \(bwrap\) is not installed or not on PATH: install the bubblewrap package, or pass --bwrap PATH/);
  // auto starts anyway, and says so loudly, at warning level, after the mode line.
  const d = await daemon(t, s, ['--bwrap', '/bin/false']);
  const warning = await d.waitFor(/SANDBOX UNAVAILABLE/);
  assert.match(warning, /warning: SANDBOX UNAVAILABLE, compilers run UNCONFINED/);
  assert.ok(d.lines.findIndex((l) => / mode kind=/.test(l)) < d.lines.indexOf(warning));
  const a = await sendRaw(d.port, encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], 'int x;\n'));
  assert.ok(a.kind === 'answer' && a.response.status === 0);
});

// What the real client sends as given (distcc src/arg.c, src/strip.c strip none of these), the
// reason distccd answers, and the client's own options that must keep working. (-fplugin= and
// -specs= fail in the client's own preprocessing first; allowlist tests cover them.)
const REFUSED: ReadonlyArray<readonly [string[], RegExp]> = [
  [['-x', 'c'], /-x c makes the server preprocess again/],
  [['-B', '/usr/lib/gcc'], /-B \/usr\/lib\/gcc makes the driver run cc1 and as from a directory the client names/],
  [['-B/usr/lib/gcc'], /-B\/usr\/lib\/gcc makes the driver run cc1/],
  [['-iplugindir=/usr/lib'], /-iplugindir=\/usr\/lib chooses the directory compiler plugins load from/],
  [['-imultilib', 'sub'], /-imultilib sub adds a server include directory/],
  [['-Wa,@/etc/hostname'], /-Wa,@\/etc\/hostname makes the assembler read a response file/],
];

test('distccd refuses each server-path option from the real client with its reason, and the client\'s own options still compile', async (t) => {
  const s = await setup(t);
  const d = await daemon(t, s);
  await fs.writeFile(path.join(s.dir, 't.c'), '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n');
  const env = clientEnv(s.dir, `127.0.0.1:${d.port}/4`);
  for (const [options, reason] of REFUSED) {
    const r = await run('distcc', ['gcc', ...options, '-c', 't.c', '-o', 'refused.o'], { cwd: s.dir, env });
    assert.notEqual(r.code, 0, options.join(' '));
    assert.match(r.stderr, reason, options.join(' '));
    assert.match(r.stderr, /failed with exit code 101/);
  }
  const own = ['-O2', '-Wall', '-DX=1', '-I.', '--sysroot=/', '-isysroot', '/', '-x', 'none', '-MD', '-MF', 't.d'];
  const r = await run('distcc', ['gcc', ...own, '-c', 't.c', '-o', 'ok.o'], { cwd: s.dir, env });
  assert.equal(r.code, 0, r.stderr);
  await exec('gcc', [...own, '-c', 't.c', '-o', 'local.o'], { cwd: s.dir });
  assert.deepEqual(await fs.readFile(path.join(s.dir, 'ok.o')), await fs.readFile(path.join(s.dir, 'local.o')));
});

test('distccd stops a compile and answers an error when its object passes --max-output-size or its temp files fill /tmp', async (t) => {
  const s = await setup(t);
  // A 3 MiB object from a small .s; then a small object from a .s of ~2 MB (one .long a line).
  const bigObject = 'const unsigned char big[3 << 20] = { 1, 2, 3 };\nint f(void) { return big[7]; }\n';
  const bigAssembly = `const int many[] = {\n${Array.from({ length: 150_000 }, (_, i) => `${i * 7919 + 1},`).join('\n')}\n};\n`;
  const cases = [
    [['--max-output-size', '1'], bigObject, /File size limit exceeded signal terminated program as/],
    [['--sandbox-tmp-size', '1'], bigAssembly, /error writing to \/tmp\/\w+\.s: No space left on device/],
  ] as const;
  for (const [args, source, message] of cases) {
    const d = await daemon(t, s, args);
    const a = await sendRaw(d.port, encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], source), { timeoutMs: 60_000 });
    assert.ok(a.kind === 'answer', JSON.stringify(a));
    assert.notEqual(a.response.status, 0, args.join(' '));
    assert.equal(a.response.object.length, 0);
    assert.match(a.response.stderr.toString(), message, a.response.stderr.subarray(0, 2000).toString());
    const ok = await sendRaw(d.port, encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], 'int small;\n'));
    assert.ok(ok.kind === 'answer' && ok.response.status === 0, 'a compile within the caps still works');
    await d.stop();
  }
  assert.deepEqual(await settledListing(s.tmp), []);
});

test('distccd sandboxes compilers through user namespaces when it drops root for an unprivileged user', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to start as root and drop');
    return;
  }
  const s = await setup(t);
  await fs.chmod(s.dir, 0o755);
  await fs.chmod(s.tmp, 0o1777);
  const d = await startDistccd(t, { compilerDir: s.masq, env: s.env, keepRoot: false });
  const dropped = await d.waitFor(/privileges dropped user=/);
  const uid = Number(/uid=(\d+)/.exec(dropped)![1]);
  await d.waitFor(/sandbox mode=auto bwrap=/);
  await fs.chown(s.secret, uid, -1); // readable by the daemon's user: only the sandbox keeps it out
  await fs.writeFile(path.join(s.dir, 'evil.c'), incbin(s.secret));
  await fs.writeFile(path.join(s.dir, 'good.c'), 'int g(int x) { return x * 3; }\n');
  const env = clientEnv(s.dir, `127.0.0.1:${d.port}/4`);
  const bad = await run('distcc', ['gcc', '-c', 'evil.c', '-o', 'evil.o'], { cwd: s.dir, env });
  assert.notEqual(bad.code, 0);
  assert.equal(await leaked(s.token, bad.stdout + bad.stderr, path.join(s.dir, 'evil.o')), false);
  const good = await run('distcc', ['gcc', '-O2', '-c', 'good.c', '-o', 'good.o'], { cwd: s.dir, env });
  assert.equal(good.code, 0, good.stderr);
  const a = await sendRaw(d.port, spyRequest());
  assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
  // In its own user namespace the job is mapped to the daemon's uid, never root.
  assert.deepEqual(report(a.response.stderr).get('id'), [String(uid)]);
});

// Reports the job's namespaces, then ends as asked: -DSEGV kills itself by SIGSEGV (no core:
// ulimit -c 0), else exit 0, -DHOLD after a second (namespace numbers are reused once freed: two
// jobs are compared while both run). It answers no -print or -E probe (no driver).
/** The processes whose parent is `ppid`, with their command lines. */
async function childrenOf(ppid: number): Promise<Array<{ pid: number; argv: string[] }>> {
  const out: Array<{ pid: number; argv: string[] }> = [];
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '');
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== ppid) continue;
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
    out.push({ pid: Number(pid), argv: cmdline.split('\0').slice(0, -1) });
  }
  return out;
}

test('distccd runs a compiler\'s jobs in one sandbox host, each job in mount and pid namespaces of its own, and answers the compiler\'s own wait status', async (t) => {
  const s = await setup(t);
  await fs.writeFile(path.join(s.bin, 'nsspy'), NSSPY, { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(s.dir, 'masq-ns'), [...MASQUERADE_NAMES, 'nsspy']);
  const ours = await fs.readlink('/proc/self/ns/net');
  const d = await startDistccd(t, { compilerDir: masq, env: s.env });
  const namespaces = async (): Promise<Map<string, string>> => {
    const a = await sendRaw(d.port, encodeRequest(1, ['nsspy', '-DHOLD', '-c', 't.c', '-o', 't.o'], 'int x;\n'));
    assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
    return new Map(a.response.stderr.toString().trim().split('\n').map((l) => l.split(' ') as [string, string]));
  };
  const [one, two] = await Promise.all([namespaces(), namespaces()]);
  assert.notEqual(one.get('mnt'), two.get('mnt'));
  assert.notEqual(one.get('pid'), two.get('pid'));
  assert.equal(one.get('net'), two.get('net'), 'the host\'s network namespace');
  assert.notEqual(one.get('net'), ours, 'never the server\'s');
  const hosts = (await childrenOf(d.child.pid!)).filter((c) => c.argv.at(-1) === '/sandbox-host');
  assert.equal(hosts.length, 1, 'one host for the compiler, both jobs in it');
  // A crash is the compiler's signal, as unconfined; so over the per-job bwrap path (--inetd).
  const crash = await sendRaw(d.port, encodeRequest(1, ['nsspy', '-DSEGV', '-c', 't.c', '-o', 't.o'], 'int x;\n'));
  assert.ok(crash.kind === 'answer' && crash.response.status === 11, JSON.stringify(crash));
  // A host that dies is started again for the next job (it is gone, bwrap and all, before that job).
  const tree = [hosts[0]!.pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(await childrenOf(tree[i]!)).map((c) => c.pid));
  for (const pid of tree) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already: bwrap's children die with it.
    }
  }
  const dead = async (pid: number): Promise<boolean> => /^\S+ \(.*\) [ZX]/.test(await fs.readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '0 (gone) X'));
  while (!(await Promise.all(tree.map(dead))).every(Boolean)) await new Promise((r) => setTimeout(r, 20));
  await namespaces();
  const again = (await childrenOf(d.child.pid!)).filter((c) => c.argv.at(-1) === '/sandbox-host');
  assert.deepEqual(again.map((c) => c.pid === hosts[0]!.pid), [false], 'one new host');
  await d.stop();
  assert.deepEqual(await settledListing(s.tmp), []);
});

test('distccd runs each job in a bwrap of its own, and says why, when a compiler\'s sandbox host cannot start', async (t) => {
  const s = await setup(t);
  await fs.writeFile(path.join(s.bin, 'nsspy'), NSSPY, { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(s.dir, 'masq-ns'), [...MASQUERADE_NAMES, 'nsspy']);
  // A bwrap that refuses to keep capabilities, as a service's bounding set would make it.
  const bwrap = path.join(s.dir, 'bwrap-nocaps');
  await fs.writeFile(bwrap, `#!/bin/sh\ncase " $* " in *" --cap-add "*) echo "bwrap: Unable to add capabilities: Operation not permitted" >&2; exit 1;; esac\nexec /usr/bin/bwrap "$@"\n`, { mode: 0o755 });
  const d = await startDistccd(t, { compilerDir: masq, env: s.env, args: ['--bwrap', bwrap] });
  const namespaces = async (): Promise<string | undefined> => {
    const a = await sendRaw(d.port, encodeRequest(1, ['nsspy', '-DHOLD', '-c', 't.c', '-o', 't.o'], 'int x;\n'));
    assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
    return /^net (.*)$/m.exec(a.response.stderr.toString())?.[1];
  };
  const [one, two] = await Promise.all([namespaces(), namespaces()]);
  assert.notEqual(one, two, 'a network namespace each');
  const said = await d.waitFor(/sandbox host of \S+nsspy serves no job/);
  assert.match(said, /warning: .*its jobs run in a bwrap each: it cannot start: .*Unable to add capabilities/);
  const crash = await sendRaw(d.port, encodeRequest(1, ['nsspy', '-DSEGV', '-c', 't.c', '-o', 't.o'], 'int x;\n'));
  assert.ok(crash.kind === 'answer' && crash.response.status === 11, JSON.stringify(crash));
  await d.stop();
  assert.deepEqual(await settledListing(s.tmp), []);
});

/** Whether `pid` is gone, zombie and all, within `ms`. */
async function reaped(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (await fs.access(`/proc/${pid}`).then(() => true, () => false)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** `pid` and every process below it. */
async function treeOf(pid: number): Promise<Array<{ pid: number; argv: string[] }>> {
  const tree = [{ pid, argv: [] as string[] }];
  for (let i = 0; i < tree.length; i++) tree.push(...(await childrenOf(tree[i]!.pid)));
  return tree;
}

/** Serves one spy job, then finds the compiler's host: its bwrap (the daemon's child) and the host process in it. */
async function servedHost(d: RunningDistccd): Promise<{ bwrap: number; host: number }> {
  const a = await sendRaw(d.port, spyRequest());
  assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
  const [bwrap] = (await childrenOf(d.child.pid!)).filter((c) => c.argv.at(-1) === '/sandbox-host');
  assert.ok(bwrap !== undefined, 'a host');
  const host = (await treeOf(bwrap.pid)).find((p) => p.argv.length === 1 && p.argv[0] === '/sandbox-host');
  assert.ok(host !== undefined, 'the host process itself');
  return { bwrap: bwrap.pid, host: host.pid };
}

test('distccd retires a sandbox host that stops answering, its running job still answered with its object and the next job served by a new host, saying why', async (t) => {
  const s = await setup(t);
  const d = await daemon(t, s);
  const { bwrap, host } = await servedHost(d);
  const holding = sendRaw(d.port, spyRequest('-DHOLD'));
  await settledListing(s.tmp, { count: 2 });
  process.kill(host, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(host, 'SIGCONT');
    } catch {
      // gone
    }
  });
  // The job sent to the stopped host may run there should it wake: it fails rather than run twice.
  const sentAt = Date.now();
  const lost = await sendRaw(d.port, spyRequest());
  assert.ok(Date.now() - sentAt < 5000, `answered in ${Date.now() - sentAt} ms, not after a long block`);
  assert.ok(lost.kind === 'answer' && lost.response.status === 110 << 8, JSON.stringify(lost));
  const said = await d.waitFor(/sandbox host of \S+spy was retired/);
  assert.match(said, /did not answer for a job in 1000 ms/);
  const next = await sendRaw(d.port, spyRequest());
  assert.ok(next.kind === 'answer' && next.response.status === 0, JSON.stringify(next));
  const hosts = (await childrenOf(d.child.pid!)).filter((c) => c.argv.at(-1) === '/sandbox-host');
  assert.ok(hosts.some((c) => c.pid !== bwrap), 'a new host');
  const held = await holding;
  assert.ok(held.kind === 'answer' && held.response.status === 0, `the running job keeps its answer: ${JSON.stringify(held)}`);
  assert.match(report(held.response.stderr).get('write')?.join('\n') ?? '', /Read-only file system/, 'it ran sandboxed');
  // Its job done, the retired host's bwrap is killed and reaped.
  assert.ok(await reaped(bwrap, 5000), 'the old bwrap reaped');
  await d.stop();
  assert.deepEqual(await settledListing(s.tmp), []);
});

test('distccd starts a compiler\'s sandbox host with --sandbox-processes, so all its jobs count against the daemon user\'s one limit', async (t) => {
  const s = await setup(t);
  const d = await daemon(t, s, ['--sandbox-processes', '333']);
  const { bwrap } = await servedHost(d);
  const nproc = async (pid: number): Promise<string> => {
    const line = (await fs.readFile(`/proc/${pid}/limits`, 'latin1')).split('\n').find((l) => l.startsWith('Max processes')) ?? '';
    return line.slice(26).trim().split(/\s+/).slice(0, 2).join(' ');
  };
  for (const p of await treeOf(bwrap)) assert.equal(await nproc(p.pid), '333 333', `pid ${p.pid} ${p.argv.join(' ')}`);
  assert.notEqual(await nproc(d.child.pid!), '333 333', 'the daemon\'s own limit is its own');
  await d.stop();
});

test('distccd reaps a sandbox host that dies at once and says so, before its compiler\'s next job', async (t) => {
  const s = await setup(t);
  const d = await daemon(t, s);
  const { bwrap, host } = await servedHost(d);
  process.kill(host, 'SIGKILL');
  const said = await d.waitFor(/sandbox host of \S+spy was gone/, 5000);
  assert.match(said, /its bwrap ended: exit \d+/);
  assert.ok(await reaped(bwrap, 5000), 'the old bwrap reaped');
  const b = await sendRaw(d.port, spyRequest());
  assert.ok(b.kind === 'answer' && b.response.status === 0, JSON.stringify(b));
  await d.stop();
});

/** A seccomp program (classic BPF, as bwrap --seccomp reads it) failing clone(2) with `errno`, allowing all else (x86_64 and aarch64). */
function cloneFails(errno: number): Buffer {
  const [arch, clone] = process.arch === 'arm64' ? [0xc00000b7, 220] : [0xc000003e, 56];
  const ops: Array<[number, number, number, number]> = [
    [0x20, 0, 0, 4], // ld arch
    [0x15, 1, 0, arch], // jeq arch: next, else allow
    [0x06, 0, 0, 0x7fff0000],
    [0x20, 0, 0, 0], // ld nr
    [0x15, 0, 1, clone],
    [0x06, 0, 0, 0x00050000 | errno], // SECCOMP_RET_ERRNO
    [0x06, 0, 0, 0x7fff0000], // SECCOMP_RET_ALLOW
  ];
  const out = Buffer.alloc(ops.length * 8);
  ops.forEach(([code, jt, jf, k], i) => {
    out.writeUInt16LE(code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    out.writeUInt32LE(k, i * 8 + 4);
  });
  return out;
}

test('distccd runs a compiler\'s jobs in a bwrap each, and says why, when its sandbox host\'s clone fails with any errno that does not pass (EINVAL)', async (t) => {
  const s = await setup(t);
  const filter = path.join(s.dir, 'clone-einval.bpf');
  await fs.writeFile(filter, cloneFails(22));
  // bwrap as given, but the host (and it alone) under a filter that fails its clone with EINVAL.
  const bwrap = path.join(s.dir, 'bwrap-noclone');
  await fs.writeFile(bwrap, `#!/bin/sh\ncase " $* " in *" /sandbox-host ") exec /usr/bin/bwrap --seccomp 9 "$@" 9<${filter};; esac\nexec /usr/bin/bwrap "$@"\n`, { mode: 0o755 });
  const d = await daemon(t, s, ['--bwrap', bwrap]);
  for (let i = 0; i < 2; i++) {
    const a = await sendRaw(d.port, spyRequest());
    assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
  }
  const said = await d.waitFor(/sandbox host of \S+spy serves no job/);
  assert.match(said, /it cannot clone a job: .*Invalid argument/);
  assert.equal(d.lines.filter((l) => /sandbox host of \S+spy serves no job/.test(l)).length, 1, 'tried once, not at every job');
  await d.stop();
  assert.deepEqual(await settledListing(s.tmp), []);
});
