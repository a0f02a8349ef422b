// The sandbox of a process that serves one job (--inetd, systemd Accept=yes): the host program
// outside bwrap (`distkit-sandbox-host --own-namespaces`, started ahead of the request, or its
// one-shot mode `--job`: sandbox.ts), which replaces a bwrap per job there; bwrap where this
// machine refuses the host program what it allows bwrap. The security proofs hold whichever runs.
// The same proofs as a daemon's jobs get in distccd_sandbox.test.ts, over real inetd-style
// processes (one `distccd --inetd` per connection, the connection on fd 0 and 1): a job sees its
// own files only, not a concurrent job's nor the server's, has no network, gets the compiler's own
// crash signal, and is killed, all it started with it, when --job-lifetime runs out.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { DISTCCD, KEEP_ROOT, makeMasqueradeDir, MASQUERADE_NAMES } from '../support/distccd_harness';
import { encodeRequest, sendRaw } from '../support/raw_distcc_client';
import { gone, HANG, hostListeners, NETSPY, NSSPY, report, setup, spyRequest, type Setup } from '../support/sandbox_spies';
import { settledListing } from '../support/settled_listing';
import { hostProgram } from '../../src/compile/sandbox/sandbox_host';

const exec = promisify(execFile);

/**
 * Whether the host program's mode works on this machine (its namespaces, a root built, a program
 * run in it), found apart from the daemon's own check: where it does, the daemon must run its jobs
 * with it (never a silent bwrap); where it does not, bwrap is the correct fallback.
 */
const oneShotWorks = spawnSync(hostProgram(), ['--job', '1', '--ro-bind', '/', '/', '--', 'true'], { stdio: 'ignore', timeout: 20_000 }).status === 0;

/** The runner the daemon's sandbox line reports (jobs=), which must be the host program's where it works. */
function runnerOf(log: string): string | undefined {
  const runner = /sandbox mode=\S+ .*jobs=(\S+)/.exec(log)?.[1];
  assert.ok(runner === 'one-shot-each' || runner === 'bwrap-each', `a sandbox per job: ${runner}`);
  if (oneShotWorks) assert.equal(runner, 'one-shot-each', 'each job with the host program where it works here, not bwrap');
  if (runner === 'one-shot-each') assert.doesNotMatch(log, /started ahead/, 'the host started ahead took the job');
  return runner;
}

/**
 * A port-0 listener that serves each connection as inetd nowait would: a `distccd --inetd` of its
 * own on fd 0 and 1, logging to `log`. The listener and every child are ended by t.after.
 */
async function serveInetd(t: TestContext, s: Setup, masq: string, env: NodeJS.ProcessEnv, args: readonly string[] = []): Promise<{ port: number; log: string; children: ReadonlySet<ChildProcess> }> {
  const log = path.join(s.dir, `inetd-${randomBytes(4).toString('hex')}.log`);
  const runtime = path.join(s.dir, 'run');
  const children = new Set<ChildProcess>();
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const argv = [DISTCCD, '--inetd', '--no-cache', '--allow', '127.0.0.1', '--compiler-dir', masq, '--log-file', log, '--log-level', 'debug', ...KEEP_ROOT, ...args];
    const child = spawn(process.execPath, argv, { stdio: [socket, socket, 'ignore'], env: { ...process.env, RUNTIME_DIRECTORY: runtime, ...env } });
    socket.destroy(); // the child holds its own copies, as after inetd's fork
    children.add(child);
    child.once('exit', () => children.delete(child));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...children].map((c) => new Promise((resolve) => { c.once('exit', resolve); c.kill('SIGTERM'); })));
  });
  return { port: (server.address() as net.AddressInfo).port, log, children };
}

test('distccd --inetd runs each job in a one-shot sandbox that shows it its own files only, no network, and the compiler\'s own crash signal', async (t) => {
  const s = await setup(t);
  await fs.writeFile(path.join(s.dir, 'netspy.c'), NETSPY);
  await exec('gcc', ['-O1', '-o', path.join(s.bin, 'netspy'), path.join(s.dir, 'netspy.c')]);
  await fs.writeFile(path.join(s.bin, 'nsspy'), NSSPY, { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(s.dir, 'masq-one-shot'), [...MASQUERADE_NAMES, 'spy', 'netspy', 'nsspy']);
  const { accepted, env: netEnv } = await hostListeners(t);
  const env = { ...s.env, ...netEnv };

  for (const mode of ['auto', 'off'] as const) {
    accepted.length = 0;
    assert.deepEqual(await settledListing(s.tmp), [], 'the last round\'s jobs have cleaned up');
    const d = await serveInetd(t, s, masq, env, [`--sandbox=${mode}`]);
    // A job that holds its files while the next one looks around.
    const holding = sendRaw(d.port, spyRequest('-DHOLD'));
    const others = await settledListing(s.tmp, { count: 2 });
    assert.equal(others.length, 2, `the first job's files: ${others.join(' ')}`);
    const a = await sendRaw(d.port, spyRequest());
    assert.ok(a.kind === 'answer' && a.response.status === 0, JSON.stringify(a));
    const seen = report(a.response.stderr);
    const jobDir = seen.get('ls JOBDIR') ?? [];
    const netJob = await sendRaw(d.port, encodeRequest(1, ['netspy', '-c', 't.c', '-o', 't.o'], 'int x;\n'));
    assert.ok(netJob.kind === 'answer' && netJob.response.status === 0, JSON.stringify(netJob));
    const said = netJob.response.stderr.toString();
    if (mode === 'auto') {
      assert.equal(jobDir.length, 2, `its own input and output: ${jobDir.join(' ')}`);
      assert.deepEqual(jobDir.filter((name) => others.includes(name)), [], 'none of the other job\'s');
      assert.doesNotMatch(a.response.stderr.toString(), new RegExp(s.token));
      assert.match((seen.get('cat SECRET') ?? []).join('\n'), /No such file or directory/);
      const writes = seen.get('write') ?? [];
      assert.equal(writes.length, 2, writes.join('\n'));
      for (const line of writes) assert.match(line, /Read-only file system/);
      for (const hidden of ['home', 'root', 'srv', 'var', 'etc']) assert.ok(!(seen.get('ls /') ?? []).includes(hidden), `no /${hidden}: ${seen.get('ls /')?.join(' ')}`);
      assert.match(said, /^tcp (?!connected).+$/m, said);
      assert.match(said, /^abstract (?!connected).+$/m, said);
      assert.deepEqual(accepted, [], 'no connection reached the host');
      // A crash is the compiler's own signal, as unconfined.
      const crash = await sendRaw(d.port, encodeRequest(1, ['nsspy', '-DSEGV', '-c', 't.c', '-o', 't.o'], 'int x;\n'));
      assert.ok(crash.kind === 'answer' && crash.response.status === 11, JSON.stringify(crash));
      const ours = await fs.readlink('/proc/self/ns/net');
      const nsJob = await sendRaw(d.port, encodeRequest(1, ['nsspy', '-c', 't.c', '-o', 't.o'], 'int x;\n'));
      assert.ok(nsJob.kind === 'answer' && nsJob.response.status === 0, JSON.stringify(nsJob));
      assert.doesNotMatch(nsJob.response.stderr.toString(), new RegExp(`^net ${ours.replace(/[[\]]/g, '\\$&')}$`, 'm'), 'never the server\'s network namespace');
      const text = await fs.readFile(d.log, 'utf8');
      const runners = new Set([...text.matchAll(/sandbox mode=auto .*jobs=(\S+)/g)].map((m) => m[1]));
      assert.equal(runners.size, 1, [...runners].join(' '));
      runnerOf(text);
    } else {
      // The control: unconfined, the same jobs see the other job's files, the secret, the network.
      assert.deepEqual(jobDir.filter((name) => others.includes(name)).sort(), others, a.response.stderr.toString());
      assert.match(a.response.stderr.toString(), new RegExp(s.token));
      assert.match(said, /^tcp connected$/m, said);
      assert.match(said, /^abstract connected$/m, said);
    }
    const held = await holding;
    assert.ok(held.kind === 'answer' && held.response.status === 0, JSON.stringify(held));
  }
  assert.deepEqual(await settledListing(s.tmp), []);
});

test('distccd --inetd kills a one-shot sandboxed compiler and everything it started when --job-lifetime runs out', async (t) => {
  const s = await setup(t);
  const masq = await makeMasqueradeDir(path.join(s.dir, 'masq-one-shot'), [...MASQUERADE_NAMES, 'spy']);
  const d = await serveInetd(t, s, masq, s.env, ['--job-lifetime', '1']);
  const r = await sendRaw(d.port, spyRequest('-DHANG'));
  assert.ok(r.kind === 'answer' && r.response.status === 118 << 8, JSON.stringify(r));
  assert.ok(await gone(HANG, 5000), 'the sandboxed sleep is killed');
  runnerOf(await fs.readFile(d.log, 'utf8'));
  assert.deepEqual(await settledListing(s.tmp), []);
});

/** Polls `probe` every 20 ms until it gives a value, or undefined after `ms`. */
async function poll<T>(probe: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined || Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The pids of `pid`'s children (every thread's). */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await fs.readdir(`/proc/${pid}/task`).catch(() => []);
  const lists = await Promise.all(tasks.map((tid) => fs.readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '')));
  return lists.join(' ').split(/\s+/).filter((x) => x !== '').map(Number);
}

/** Whether `pid` is gone (or a zombie, no longer running). */
async function pidGone(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' || /^\d+ \(.*\) Z/.test(stat);
}

/** One connection's inetd process, once its sandbox line is logged: its runner and the host it started ahead (one-shot-each). */
async function connected(d: { port: number; log: string; children: ReadonlySet<ChildProcess> }): Promise<{ socket: net.Socket; child: ChildProcess; host: number | undefined }> {
  const socket = net.connect(d.port, '127.0.0.1');
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const child = await poll(async () => [...d.children][0], 10_000);
  assert.ok(child?.pid !== undefined, 'the connection has its process');
  const text = await poll(async () => {
    const log = await fs.readFile(d.log, 'utf8').catch(() => '');
    return /sandbox mode=/.test(log) ? log : undefined;
  }, 10_000);
  assert.ok(text !== undefined, 'the sandbox line is logged');
  if (runnerOf(text) !== 'one-shot-each') return { socket, child, host: undefined };
  const host = await poll(async () => {
    for (const pid of await childrenOf(child.pid!)) {
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes('\0--own-namespaces\0')) return pid;
    }
    return undefined;
  }, 5_000);
  assert.ok(host !== undefined, 'the sandbox host is started before any request');
  return { socket, child, host };
}

test('distccd --inetd starts its job\'s sandbox before the request and leaves no process behind when no compile comes', async (t) => {
  const s = await setup(t);
  const masq = await makeMasqueradeDir(path.join(s.dir, 'masq-one-shot'), [...MASQUERADE_NAMES, 'spy']);
  const d = await serveInetd(t, s, masq, s.env);
  const { socket, child, host } = await connected(d);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  socket.end('not a distcc request at all\n');
  await exited;
  socket.destroy();
  if (host !== undefined) assert.ok(await poll(async () => ((await pidGone(host)) ? true : undefined), 5_000), 'the host started ahead ends with its process');
  assert.deepEqual(await settledListing(s.tmp), []);
});

test('distccd --inetd\'s sandboxed compiler dies with its process when that is killed', async (t) => {
  const s = await setup(t);
  const masq = await makeMasqueradeDir(path.join(s.dir, 'masq-one-shot'), [...MASQUERADE_NAMES, 'spy']);
  const d = await serveInetd(t, s, masq, s.env);
  const { socket, child, host } = await connected(d);
  socket.write(spyRequest('-DHANG'));
  assert.ok(await poll(async () => ((await gone(HANG, 0)) ? undefined : true), 10_000), 'the sandboxed sleep runs');
  child.kill('SIGKILL');
  assert.ok(await gone(HANG, 5000), 'the sandboxed sleep dies with the daemon');
  if (host !== undefined) assert.ok(await poll(async () => ((await pidGone(host)) ? true : undefined), 5_000), 'and its host');
  socket.destroy();
});
