// distccd started from its V8 startup snapshot (dist/snapshot/distccd.blob, made by `npm run
// build` through scripts/snapshot.ts) through the launcher that install puts in sbin: the same
// answers as the plain script, the real client compiling over ssh pipes and TCP, a detached
// daemon (which restarts itself from the snapshot), and the launcher's fallback to the plain
// script when the blob may not fit the node binary.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { statSync } from 'node:fs';
import path from 'node:path';
import { clientEnv, DISTCCD, KEEP_ROOT, makeMasqueradeDir, run, tempDir } from '../support/distccd_harness';
import { onFreePort, PORT_TAKEN } from '../support/free_port';
import { start } from './echo_harness';
import { renderTemplate } from '../support/render_template';

const root = path.resolve(__dirname, '../../..');
const BLOB = path.join(root, 'dist/snapshot/distccd.blob');
const STAMP = `${BLOB}.node-mtime`;
const SOURCE = '#include <stdio.h>\nint main(void) { puts("snap"); return 0; }\n';

type Tree = { dir: string; launcher: string; masq: string; tmp: string };

/**
 * A prefix with the distccd launcher rendered as install renders it. `dist` is the build's dist,
 * linked whole, or (own stamp) a dist whose snapshot directory holds the build's blob and entry
 * but a stamp file of its own, for the fallback tests.
 */
async function prefixTree(t: Parameters<typeof tempDir>[0], ownStamp = false): Promise<Tree> {
  const dir = tempDir(t, 'distkit-snap-');
  const prefix = path.join(dir, 'prefix');
  const lib = path.join(prefix, 'lib/distkit');
  await fs.mkdir(path.join(prefix, 'sbin'), { recursive: true });
  await fs.mkdir(lib, { recursive: true });
  if (ownStamp) {
    await fs.mkdir(path.join(lib, 'dist/snapshot'), { recursive: true });
    await fs.symlink(path.join(root, 'dist/src'), path.join(lib, 'dist/src'));
    await fs.symlink(BLOB, path.join(lib, 'dist/snapshot/distccd.blob'));
    // (touch -r, as install's cp -p: JavaScript's utimes cannot set nanoseconds)
    const copy = path.join(lib, 'dist/snapshot/distccd.blob.node-mtime');
    await fs.copyFile(STAMP, copy);
    assert.equal(spawnSync('touch', ['-r', STAMP, copy]).status, 0);
  } else {
    await fs.symlink(path.join(root, 'dist'), path.join(lib, 'dist'));
  }
  const launcher = path.join(prefix, 'sbin/distccd');
  renderTemplate('scripts/launcher/distccd', launcher, { PREFIX: prefix, NODE: process.execPath, COMPILER_DIR: '/usr/lib/distcc' }, '0755');
  const tmp = path.join(dir, 'tmp');
  await fs.mkdir(tmp);
  return { dir, launcher, masq: await makeMasqueradeDir(path.join(dir, 'masq')), tmp };
}

/** Starts distccd through the launcher in the foreground on port 0; resolves with its pid, port and "ready" line. */
async function startThrough(t: TestContext, tree: Tree, env: NodeJS.ProcessEnv = {}): Promise<{ pid: number; port: number; ready: string }> {
  const p = start(t, tree.launcher, ['--no-detach', '--daemon', '--listen', '127.0.0.1', '--port', '0', '--allow', '127.0.0.1',
    '--no-cache', '--compiler-dir', tree.masq, '--log-stderr', ...KEEP_ROOT], { env: { ...process.env, TMPDIR: tree.tmp, RUNTIME_DIRECTORY: tree.dir, ...env } });
  const ready = await p.waitFor(/^.* ready .*$/m, 20_000);
  const port = Number((await p.waitFor(/listening on=127\.0\.0\.1:(\d+)/))[1]);
  return { pid: p.child.pid!, port, ready: ready[0] };
}

async function compileAndCompare(dir: string, hosts: string, extra: NodeJS.ProcessEnv = {}): Promise<void> {
  await fs.writeFile(path.join(dir, 't.c'), SOURCE);
  const r = await run('distcc', ['gcc', '-g', '-c', 't.c', '-o', 'remote.o'], { cwd: dir, env: clientEnv(dir, hosts, extra) });
  assert.equal(r.code, 0, r.stderr);
  const local = await run('gcc', ['-g', '-c', 't.c', '-o', 'local.o'], { cwd: dir });
  assert.equal(local.code, 0, local.stderr);
  assert.deepEqual(await fs.readFile(path.join(dir, 'remote.o')), await fs.readFile(path.join(dir, 'local.o')));
}

async function cmdline(pid: number): Promise<string[]> {
  return (await fs.readFile(`/proc/${pid}/cmdline`, 'latin1')).split('\0').slice(0, -1);
}

test('the build makes the startup snapshot with a stamp that carries the mtime of the node that made it', () => {
  const blob = statSync(BLOB);
  assert.ok(blob.size > 1 << 20, `the blob is only ${blob.size} bytes`);
  const stamp = statSync(STAMP, { bigint: true });
  const node = statSync(process.execPath, { bigint: true });
  assert.equal(stamp.mtimeNs, node.mtimeNs);
});

test('distccd from the snapshot prints what the plain script prints for --version, --help and a bad option', () => {
  for (const args of [['--version'], ['--help'], ['--jobs', 'many'], ['--no-such-option']]) {
    const plain = spawnSync(process.execPath, [DISTCCD, ...args], { encoding: 'utf8' });
    const snap = spawnSync(process.execPath, ['--snapshot-blob', BLOB, '--', ...args], { encoding: 'utf8' });
    const unPid = (s: string): string => s.replace(/\[\d+\]/g, '[PID]');
    assert.equal(snap.status, plain.status, `exit code for ${args.join(' ')}`);
    assert.equal(snap.stdout, plain.stdout, `stdout for ${args.join(' ')}`);
    assert.equal(unPid(snap.stderr), unPid(plain.stderr), `stderr for ${args.join(' ')}`);
  }
});

for (const [protocol, suffix] of [[1, ''], [2, ',lzo']] as const) {
  test(`the launcher's distccd --inetd starts from the snapshot and compiles for the real client over ssh pipes in protocol ${protocol}`, async (t) => {
    const tree = await prefixTree(t);
    const log = path.join(tree.dir, 'distccd.log');
    const ssh = path.join(tree.dir, 'fake-ssh');
    await fs.writeFile(ssh, `#!/bin/sh\nTMPDIR='${tree.tmp}' RUNTIME_DIRECTORY='${tree.dir}' exec '${tree.launcher}' --inetd --no-cache --compiler-dir '${tree.masq}' --log-file '${log}' ${KEEP_ROOT.join(' ')}\n`, { mode: 0o755 });
    await compileAndCompare(tree.dir, `@localhost/2${suffix}`, { DISTCC_SSH: ssh });
    const text = await fs.readFile(log, 'utf8');
    assert.match(text, / ready .* start=snapshot/);
    assert.match(text, /client: pipe COMPILE_OK exit:0 /);
  });
}

test('the launcher\'s standalone distccd detaches from the snapshot, writes its pid file and compiles', async (t) => {
  const tree = await prefixTree(t);
  const pidFile = path.join(tree.dir, 'distccd.pid');
  const log = path.join(tree.dir, 'distccd.log');
  const start = spawnSync(tree.launcher, ['--daemon', '--pid-file', pidFile, '--listen', '127.0.0.1', '--port', '0', '--allow', '127.0.0.1',
    '--no-cache', '--compiler-dir', tree.masq, '--log-file', log, ...KEEP_ROOT], { env: { ...process.env, TMPDIR: tree.tmp, RUNTIME_DIRECTORY: tree.dir }, encoding: 'utf8', timeout: 30_000 });
  assert.equal(start.status, 0, start.stderr);
  const pid = Number((await fs.readFile(pidFile, 'utf8')).trim());
  t.after(() => { try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ } });
  // The starter returns once the daemon listens, and the daemon logs where before it says so.
  const port = Number(/listening on=127\.0\.0\.1:(\d+)/.exec(await fs.readFile(log, 'utf8'))?.[1]);
  const argv = await cmdline(pid);
  assert.deepEqual(argv.slice(1, 4), ['--snapshot-blob', path.join(tree.dir, 'prefix/lib/distkit/dist/snapshot/distccd.blob'), '--']);
  await compileAndCompare(tree.dir, `127.0.0.1:${port}/2,lzo`);
  assert.match(await fs.readFile(log, 'utf8'), / ready .* start=snapshot/);
});

test('the launcher runs the plain script when NODE_OPTIONS is set, whose V8 flags the blob may not have', async (t) => {
  const tree = await prefixTree(t);
  const { pid, ready } = await startThrough(t, tree, { NODE_OPTIONS: '--no-warnings' });
  assert.match(ready, /start=script/);
  assert.ok(!(await cmdline(pid)).includes('--snapshot-blob'));
});

test('the launcher runs the plain script when node\'s mtime differs from the stamp, as after a node upgrade', async (t) => {
  const tree = await prefixTree(t, true);
  const stamp = path.join(tree.dir, 'prefix/lib/distkit/dist/snapshot/distccd.blob.node-mtime');
  const fromSnapshot = await startThrough(t, tree);
  assert.match(fromSnapshot.ready, /start=snapshot/, 'the copied stamp still matches');
  const node = statSync(process.execPath);
  await fs.utimes(stamp, node.atime, new Date(node.mtimeMs - 86_400_000));
  const { pid, port, ready } = await startThrough(t, tree);
  assert.match(ready, /start=script/);
  assert.ok(!(await cmdline(pid)).includes('--snapshot-blob'));
  await compileAndCompare(tree.dir, `127.0.0.1:${port}/1`);
});

test('distccd from the snapshot under systemd-socket-activate tells READY=1 over NOTIFY_SOCKET and compiles', async (t) => {
  // sd-notify is the one addon required only while running (when NOTIFY_SOCKET is set): it must
  // load as it is required, before the privilege drop (after it, a 0700 checkout is unreadable).
  const tree = await prefixTree(t);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    await fs.chmod(tree.dir, 0o755); // distccd's own user must reach masq and TMPDIR
    await fs.chmod(tree.tmp, 0o1777);
  }
  const notify = path.join(tree.dir, 'notify');
  const receiver = start(t, 'python3', ['-c', [
    'import os, socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.bind(sys.argv[1])',
    'os.chmod(sys.argv[1], 0o777)  # as /run/systemd/notify: writable after the privilege drop',
    'print("bound", flush=True)',
    'while True: print(s.recv(4096).decode().replace("\\n", " "), flush=True)',
  ].join('\n'), notify]);
  await receiver.waitFor(/^bound$/m);
  const { port, activate } = await onFreePort(async (port) => {
    const activate = start(t, 'systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '-E', `NOTIFY_SOCKET=${notify}`, '-E', `TMPDIR=${tree.tmp}`,
      tree.launcher, '--log-stderr', '--no-cache', '--allow', '127.0.0.1', '--compiler-dir', tree.masq]);
    return (await activate.waitForBind(/Listening on/)) === PORT_TAKEN ? PORT_TAKEN : { port, activate };
  });
  // The first connection starts distccd on the inherited listener (LISTEN_FDS, Accept=no).
  await compileAndCompare(tree.dir, `127.0.0.1:${port}/2,lzo`);
  await receiver.waitFor(/READY=1/, 15_000);
  const log = activate.output();
  assert.match(log, /mode kind=systemd-listen /);
  assert.match(log, / ready .* start=snapshot/);
  if (asRoot) assert.match(log, /privileges dropped user=(distccd|distcc|nobody) /);
});
