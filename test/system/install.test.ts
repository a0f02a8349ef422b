// scripts/install and scripts/uninstall against a staging root (DESTDIR): what lands where, that
// an admin's configuration and Debian's files survive, that distkit-postinst --root activates the
// stage, and that uninstall leaves the root exactly as it found it. The container test
// (service_container.test.ts) then boots such a root.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderTemplate } from '../support/render_template';
import { tempDir } from '../support/temp_dir';

const root = path.resolve(__dirname, '../../..');
const prefix = '/usr/local';

/** Every path under dir with its type and content hash (links: their target). */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const r = path.join(rel, name);
      const full = path.join(dir, r);
      const st = fs.lstatSync(full);
      if (st.isSymbolicLink()) out.set(r, `l ${fs.readlinkSync(full)}`);
      else if (st.isDirectory()) { out.set(r, `d ${(st.mode & 0o7777).toString(8)}`); walk(r); }
      else out.set(r, `f ${(st.mode & 0o7777).toString(8)} ${createHash('sha256').update(fs.readFileSync(full)).digest('hex')}`);
    }
  };
  walk('.');
  return out;
}

/** Files under root: an executable script for each name in usr/bin, the users in etc/passwd. */
function addSystem(dir: string, compilers: string[], users: string[]): void {
  fs.mkdirSync(path.join(dir, 'usr/bin'), { recursive: true });
  for (const c of compilers) fs.writeFileSync(path.join(dir, 'usr/bin', c), '#!/bin/sh\n', { mode: 0o755 });
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/passwd'), ['root:x:0:0:root:/root:/bin/sh', ...users.map((u, i) => `${u}:x:${120 + i}:${120 + i}::/nonexistent:/usr/sbin/nologin`)].join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'etc/group'), ['root:x:0:', ...users.map((u, i) => `${u}:x:${120 + i}:`)].join('\n') + '\n');
}

/**
 * A small Debian-like root: Debian's distcc init script, logrotate file and defaults, a gcc, the
 * users, no /usr/lib/distcc; with `dpkg`, an (empty) dpkg database as well.
 */
function makeRoot(t: { after(fn: () => void): void }, { distccDir = false, dpkg = false } = {}): string {
  const dir = tempDir(t, 'distkit-destdir-');
  fs.mkdirSync(path.join(dir, 'etc/init.d'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'etc/default'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'etc/logrotate.d'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/init.d/distcc'), '#!/bin/sh\n# Debian distcc init script\n', { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'etc/logrotate.d/distcc'), '/var/log/distccd.log {\n\tweekly\n}\n');
  fs.writeFileSync(path.join(dir, 'etc/default/distcc'), 'STARTDISTCC="true"\nALLOWEDNETS="10.0.0.0/8"\n');
  addSystem(dir, ['gcc-12', 'x86_64-linux-gnu-gcc-12', 'cc', 'ls'], ['distccd', 'distcache']);
  if (distccDir) fs.mkdirSync(path.join(dir, 'usr/lib/distcc'), { recursive: true });
  if (dpkg) fs.mkdirSync(path.join(dir, 'var/lib/dpkg'), { recursive: true });
  return dir;
}

/** Runs the stage's own distkit-postinst from outside, on the stage (`--root`). */
function activate(dest: string): string {
  const r = spawnSync(path.join(dest, prefix, 'lib/distkit/libexec/distkit-postinst'), ['--root', dest], { encoding: 'utf8' });
  assert.equal(r.status, 0, `distkit-postinst --root failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

function run(script: string, destdir: string, args: string[] = []): string {
  const r = spawnSync(path.join(root, 'scripts', script), args, {
    env: { ...process.env, DESTDIR: destdir }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, `${script} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stderr;
}

test('install stages every file under DESTDIR and uninstall removes exactly those when run twice', (t) => {
  const dest = makeRoot(t);
  const before = snapshot(dest);
  const debianInit = fs.readFileSync(path.join(dest, 'etc/init.d/distcc'));
  run('install', dest, ['--node', '/usr/bin/node']);
  const lib = path.join(dest, prefix, 'lib/distkit');
  activate(dest);
  for (const f of ['sbin/distccd', 'sbin/dc_server', 'sbin/dc_client', 'bin/dc_snoop',
    'lib/systemd/system/distccd.socket', 'lib/systemd/system/distccd.service',
    'lib/systemd/system/distccd-accept@.service', 'lib/systemd/system/dc_server.socket',
    'lib/systemd/system/dc_client.service', 'lib/sysusers.d/distkit.conf',
    'share/man/man1/distccd.1', 'share/man/man1/dc_server.1', 'share/man/man1/dc_client.1',
    'share/man/man1/dc_snoop.1', 'share/distkit/inetd/inetd.conf', 'share/distkit/inetd/xinetd.d/distcc',
    'lib/distkit/dist/src/errors.js', 'lib/distkit/node_modules/minimist/package.json',
    'lib/distkit/dist/snapshot/distccd.blob', 'lib/distkit/dist/snapshot/distccd.blob.node-mtime',
    'lib/distkit/libexec/distccd-defaults', 'lib/distkit/MANIFEST']) {
    assert.ok(fs.existsSync(path.join(dest, prefix, f)), `${prefix}/${f} was not installed`);
  }
  for (const f of ['etc/logrotate.d/distcc', 'etc/logrotate.d/distcache']) assert.ok(fs.existsSync(path.join(dest, f)), `/${f} was not installed`);
  assert.ok(!fs.existsSync(path.join(lib, 'node_modules/typescript')), 'dev dependencies must not be installed');
  // Debian's init script is replaced by ours and kept; the admin's defaults are not touched.
  assert.match(fs.readFileSync(path.join(dest, 'etc/init.d/distcc'), 'utf8'), /distkit/);
  assert.deepEqual(fs.readFileSync(path.join(lib, 'displaced/etc/init.d/distcc')), debianInit);
  assert.equal(fs.readFileSync(path.join(dest, 'etc/default/distcc'), 'utf8'), 'STARTDISTCC="true"\nALLOWEDNETS="10.0.0.0/8"\n');
  assert.match(fs.readFileSync(path.join(dest, 'etc/default/dc_server'), 'utf8'), /^SESSIONS="512"$/m);
  // Paths are the target's, never the staging root's.
  const unit = fs.readFileSync(path.join(dest, prefix, 'lib/systemd/system/dc_server.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/bin\/node \/usr\/local\/lib\/distkit\/dist\/src\/cli\/dc_server\.js -listen /m);
  assert.ok(!unit.includes(dest) && !/@[A-Z_]+@/.test(unit), 'unit still holds the staging root or a placeholder');
  // No /usr/lib/distcc in this root: a masquerade dir with the compilers only, used by the units.
  // (filled by distkit-postinst; uninstall removes its links)
  assert.deepEqual(fs.readdirSync(path.join(lib, 'masquerade')).sort(), ['cc', 'gcc-12', 'x86_64-linux-gnu-gcc-12']);
  assert.equal(fs.readlinkSync(path.join(lib, 'masquerade/gcc-12')), '/usr/bin/gcc-12');
  assert.match(fs.readFileSync(path.join(dest, prefix, 'lib/systemd/system/distccd.service'), 'utf8'),
    /--compiler-dir \/usr\/local\/lib\/distkit\/masquerade/);

  // A second install replaces the first without growing the manifest or losing Debian's file.
  const manifest = fs.readFileSync(path.join(lib, 'MANIFEST'), 'utf8');
  run('install', dest, ['--node', '/usr/bin/node']);
  assert.equal(fs.readFileSync(path.join(lib, 'MANIFEST'), 'utf8'), manifest);
  assert.deepEqual(fs.readFileSync(path.join(lib, 'displaced/etc/init.d/distcc')), debianInit);

  run('uninstall', dest);
  assert.deepEqual(snapshot(dest), before);
});

test('install uses /usr/lib/distcc and makes no masquerade dir when the distribution has one', (t) => {
  const dest = makeRoot(t, { distccDir: true });
  run('install', dest, ['--node', '/usr/bin/node']);
  assert.ok(!fs.existsSync(path.join(dest, prefix, 'lib/distkit/masquerade')));
  assert.match(fs.readFileSync(path.join(dest, prefix, 'lib/systemd/system/distccd.service'), 'utf8'),
    /--compiler-dir \/usr\/lib\/distcc$/m);
  run('uninstall', dest);
});

test('a staged install creates a missing DESTDIR, names its activation, and distkit-postinst --root fills the masquerade there', (t) => {
  // A package build stage: no such directory yet, no compilers, no users.
  const dest = path.join(tempDir(t, 'distkit-stage-'), 'root');
  const log = run('install', dest, ['--node', '/usr/bin/node']);
  const postinst = `${prefix}/lib/distkit/libexec/distkit-postinst`;
  assert.ok(log.includes(`chroot ${dest} ${postinst}`), `the advice does not name the activation step:\n${log}`);
  assert.ok(log.includes(`${dest}${postinst} --root ${dest}`), `the advice does not name --root:\n${log}`);
  assert.match(log, /fills the compiler masquerade \/usr\/local\/lib\/distkit\/masquerade/);
  const masq = path.join(dest, prefix, 'lib/distkit/masquerade');
  assert.deepEqual(fs.readdirSync(masq), [], 'the stage has no compilers yet');

  // The target system: its compilers and users arrive, then the stage is activated.
  const target = (dir: string): void => addSystem(dir, ['gcc', 'g++', 'cc', 'c++', 'x86_64-linux-gnu-gcc-12', 'ls'], ['distccd', 'distcache']);
  target(dest);
  assert.match(activate(dest), /boot links not made/);
  assert.deepEqual(fs.readdirSync(masq).sort(), ['c++', 'cc', 'g++', 'gcc', 'x86_64-linux-gnu-gcc-12']);
  assert.equal(fs.readlinkSync(path.join(masq, 'g++')), '/usr/bin/g++');
  // Activated again after a compiler went away: its link goes, the others stay.
  fs.rmSync(path.join(dest, 'usr/bin/g++'));
  activate(dest);
  assert.deepEqual(fs.readdirSync(masq).sort(), ['c++', 'cc', 'gcc', 'x86_64-linux-gnu-gcc-12']);

  run('uninstall', dest);
  // What is left is the target's own (the directories install made and the target filled stay).
  const alone = tempDir(t, 'distkit-target-');
  target(alone);
  fs.rmSync(path.join(alone, 'usr/bin/g++'));
  assert.deepEqual(snapshot(dest), snapshot(alone));
});

test('distkit-postinst --root creates the missing system users in the stage and uninstall removes them', { skip: process.getuid?.() !== 0 && 'needs root (useradd/systemd-sysusers --root)' }, (t) => {
  const dest = makeRoot(t);
  fs.writeFileSync(path.join(dest, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\ndistccd:x:120:120::/nonexistent:/usr/sbin/nologin\n');
  run('install', dest, ['--node', '/usr/bin/node']);
  assert.match(activate(dest), /created system user distcache/);
  const users = (): string[] => fs.readFileSync(path.join(dest, 'etc/passwd'), 'utf8').split('\n').map((l) => l.split(':')[0]!).filter(Boolean);
  assert.deepEqual(users(), ['root', 'distccd', 'distcache']);
  assert.equal(fs.readFileSync(path.join(dest, prefix, 'lib/distkit/users-created'), 'utf8'), 'distcache\n');
  run('uninstall', dest);
  assert.deepEqual(users(), ['root', 'distccd'], 'only the user distkit created goes');
});

test('install diverts Debian\'s files with dpkg-divert when the root has a dpkg database, and uninstall removes the diversions', { skip: spawnSync('dpkg-divert', ['--version']).status !== 0 && 'no dpkg-divert here' }, (t) => {
  const dest = makeRoot(t, { dpkg: true });
  const before = snapshot(dest);
  const debian = ['etc/init.d/distcc', 'etc/logrotate.d/distcc'].map((f) => [f, fs.readFileSync(path.join(dest, f))] as const);
  const diversions = (): string => {
    const r = spawnSync('dpkg-divert', ['--root', dest, '--list'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean).sort().join('\n');
  };
  run('install', dest, ['--node', '/usr/bin/node']);
  // dpkg knows: an upgrade of Debian's distcc writes its files where ours do not live.
  assert.equal(diversions(), [
    'local diversion of /etc/init.d/distcc to /usr/local/lib/distkit/displaced/etc/init.d/distcc',
    'local diversion of /etc/logrotate.d/distcc to /usr/local/lib/distkit/displaced/etc/logrotate.d/distcc',
  ].join('\n'));
  for (const [f, content] of debian) {
    assert.deepEqual(fs.readFileSync(path.join(dest, prefix, 'lib/distkit/displaced', f)), content);
    assert.match(fs.readFileSync(path.join(dest, f), 'utf8'), /distkit/, `/${f} is not ours`);
  }
  // Reinstalling goes through uninstall and diverts again.
  run('install', dest, ['--node', '/usr/bin/node']);
  assert.match(diversions(), /^local diversion of \/etc\/init\.d\/distcc to /);

  run('uninstall', dest);
  assert.equal(diversions(), '');
  // dpkg keeps a backup of its diversions file (as of the last change): that one is new.
  const after = snapshot(dest);
  after.delete('var/lib/dpkg/diversions-old');
  if (!before.has('var/lib/dpkg/diversions')) after.delete('var/lib/dpkg/diversions');
  assert.deepEqual(after, before);
});

test('uninstall keeps an /etc/default file it installed when the admin has edited it', (t) => {
  const dest = makeRoot(t);
  run('install', dest, ['--node', '/usr/bin/node']);
  const conf = path.join(dest, 'etc/default/dc_server');
  fs.appendFileSync(conf, 'OPTIONS="-progress 100"\n');
  const log = run('uninstall', dest);
  assert.match(log, /kept \/etc\/default\/dc_server/);
  assert.ok(fs.existsSync(conf));
  assert.ok(!fs.existsSync(path.join(dest, 'etc/default/dc_client')), 'unedited defaults go');
  assert.ok(!fs.existsSync(path.join(dest, prefix, 'lib/distkit')));
});

test('installed man pages render with man -l when read from the staging root', (t) => {
  const dest = makeRoot(t);
  run('install', dest, ['--node', '/usr/bin/node']);
  for (const page of ['man1/distccd.1', 'man1/dc_server.1', 'man1/dc_client.1', 'man1/dc_snoop.1']) {
    const file = path.join(dest, prefix, 'share/man', page);
    const r = spawnSync('man', ['-l', file], { env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' }, encoding: 'utf8' });
    assert.equal(r.status, 0, `man -l ${page}: ${r.stderr}`);
    assert.match(r.stdout, /NAME\n\s+\S+\s+-\s/, `${page} has no NAME section`);
    assert.equal(r.stderr.trim(), '', `man -l ${page} warned: ${r.stderr}`);
  }
});

test('launchers keep the pid when they exec node on the installed program', async (t) => {
  // Rendered as install renders them, for a prefix whose "program" prints its own pid.
  const dir = tempDir(t, 'distkit-launcher-');
  const cli = path.join(dir, 'lib/distkit/dist/src/cli');
  fs.mkdirSync(cli, { recursive: true });
  const env = { ...process.env, PREFIX: dir, NODE: process.execPath, COMPILER_DIR: '/usr/lib/distcc' };
  // distccd-defaults execs the distccd launcher, as installed in sbin.
  fs.mkdirSync(path.join(dir, 'sbin'));
  for (const p of ['distccd', 'dc_server', 'dc_client', 'dc_snoop', 'distccd-defaults']) {
    const prog = p === 'distccd-defaults' ? 'distccd' : p;
    fs.writeFileSync(path.join(cli, `${prog}.js`), 'process.stdout.write(`${process.pid} ${process.argv.slice(2).join(" ")}`);\n');
    const launcher = path.join(dir, p === 'distccd' ? 'sbin' : '', p);
    renderTemplate(path.join('scripts/launcher', p), launcher, env, '0755');
    const child = spawn(launcher, ['-x'], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    await new Promise((resolve) => child.on('close', resolve));
    assert.equal(out, `${child.pid} -x`, `${p} did not exec node in its own process`);
  }
});
