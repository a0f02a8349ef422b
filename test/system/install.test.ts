// scripts/install and scripts/uninstall against a staging root (DESTDIR): what lands where, that
// an admin's configuration and Debian's files survive, and that uninstall leaves the root exactly
// as it found it. The container test (service_container.test.ts) then boots such a root.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderTemplate } from '../support/render_template';

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

/** A small Debian-like root: Debian's distcc init script and defaults, a gcc, no /usr/lib/distcc. */
function makeRoot(t: { after(fn: () => void): void }, withDistccDir = false): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distkit-destdir-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'etc/init.d'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'etc/default'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'usr/bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/init.d/distcc'), '#!/bin/sh\n# Debian distcc init script\n', { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'etc/default/distcc'), 'STARTDISTCC="true"\nALLOWEDNETS="10.0.0.0/8"\n');
  for (const c of ['gcc-12', 'x86_64-linux-gnu-gcc-12', 'cc', 'ls']) {
    fs.writeFileSync(path.join(dir, 'usr/bin', c), '#!/bin/sh\n', { mode: 0o755 });
  }
  if (withDistccDir) fs.mkdirSync(path.join(dir, 'usr/lib/distcc'), { recursive: true });
  return dir;
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
  const dest = makeRoot(t, true);
  run('install', dest, ['--node', '/usr/bin/node']);
  assert.ok(!fs.existsSync(path.join(dest, prefix, 'lib/distkit/masquerade')));
  assert.match(fs.readFileSync(path.join(dest, prefix, 'lib/systemd/system/distccd.service'), 'utf8'),
    /--compiler-dir \/usr\/lib\/distcc$/m);
  run('uninstall', dest);
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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distkit-launcher-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
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
