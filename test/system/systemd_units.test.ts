// The systemd units in systemd/, rendered exactly as scripts/install renders them, checked by
// systemd's own tools: `systemd-analyze verify` (syntax, referenced programs and man pages) and
// `systemd-analyze security --offline` (exposure score, and every flagged item explained in a
// comment). Also the Debian-defaults launcher that the units and the init script share.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderTemplate } from '../support/render_template';
import { tempDir, type AfterHook } from '../support/temp_dir';
import { start } from './echo_harness';
import { DISTCCD, fetchStatsPage, KEEP_ROOT, makeMasqueradeDir } from '../support/distccd_harness';
import { freePort, onFreePort, PORT_TAKEN } from '../support/free_port';

const root = path.resolve(__dirname, '../../..');
const unitDir = path.join(root, 'systemd');
const MAX_EXPOSURE = 2.0;

interface Rendered {
  readonly dir: string;
  readonly units: string[];
  readonly services: string[];
  readonly env: NodeJS.ProcessEnv;
}

/** Renders every unit and the launcher they run into a fresh prefix, with the man pages on MANPATH. */
function renderUnits(t: AfterHook): Rendered {
  const dir = tempDir(t, 'distkit-units-');
  const prefix = path.join(dir, 'prefix');
  const env = { ...process.env, PREFIX: prefix, NODE: process.execPath, COMPILER_DIR: '/usr/lib/distcc' };
  const libexec = path.join(prefix, 'lib/distkit/libexec');
  fs.mkdirSync(libexec, { recursive: true });
  renderTemplate(path.join(root, 'scripts/launcher/distccd-defaults'), path.join(libexec, 'distccd-defaults'), env, '0755');
  const out = path.join(dir, 'units');
  fs.mkdirSync(out);
  const units = fs.readdirSync(unitDir).filter((f) => /\.(socket|service)$/.test(f)).sort();
  for (const u of units) renderTemplate(path.join(unitDir, u), path.join(out, u), env);
  for (const section of ['1', '8']) {
    const man = path.join(dir, 'man', `man${section}`);
    fs.mkdirSync(man, { recursive: true });
    for (const page of fs.readdirSync(path.join(root, 'src/man')).filter((f) => f.endsWith(`.${section}`))) {
      fs.copyFileSync(path.join(root, 'src/man', page), path.join(man, page));
    }
  }
  return {
    dir,
    units: units.map((u) => path.join(out, u)),
    services: units.filter((u) => u.endsWith('.service')).map((u) => path.join(out, u)),
    env: { ...env, MANPATH: path.join(dir, 'man') },
  };
}

test('systemd units pass systemd-analyze verify when rendered for an install prefix', (t) => {
  const r = renderUnits(t);
  const names = r.units.map((u) => path.basename(u));
  for (const want of ['distccd.socket', 'distccd.service', 'distccd-accept.socket', 'distccd-accept@.service', 'distccd-stats.socket',
    'dc_server.socket', 'dc_server.service', 'dc_client.socket', 'dc_client.service']) {
    assert.ok(names.includes(want), `systemd/${want} is missing`);
  }
  const v = spawnSync('systemd-analyze', ['verify', ...r.units], { env: r.env, encoding: 'utf8' });
  assert.equal(v.status, 0, `systemd-analyze verify failed:\n${v.stdout}${v.stderr}`);
  assert.equal(v.stderr.trim(), '', `systemd-analyze verify warned:\n${v.stderr}`);
});

test('every service scores an exposure of 2.0 or less when analysed offline', (t) => {
  const r = renderUnits(t);
  assert.equal(r.services.length, 4);
  for (const s of r.services) {
    const a = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', s], { env: r.env, encoding: 'utf8' });
    const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(a.stdout);
    assert.ok(m, `no exposure score for ${path.basename(s)}:\n${a.stdout}${a.stderr}`);
    const score = Number(m[1]);
    assert.ok(score <= MAX_EXPOSURE, `${path.basename(s)} exposure ${score} > ${MAX_EXPOSURE}:\n${a.stdout}`);
  }
});

test('every hardening item the analyser flags is explained in a comment when a service relaxes it', (t) => {
  const r = renderUnits(t);
  for (const s of r.services) {
    const a = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', s], { env: r.env, encoding: 'utf8' });
    const comments = fs.readFileSync(s, 'utf8').split('\n').filter((l) => l.startsWith('#')).join('\n');
    const flagged = a.stdout.split('\n').filter((l) => l.startsWith('✗'));
    assert.ok(flagged.length > 0, `expected the analyser to list relaxed items for ${path.basename(s)}`);
    for (const line of flagged) {
      // "✗ SystemCallFilter=~@resources  ..." -> "SystemCallFilter="; "RootDirectory=/RootImage=" -> "RootDirectory="
      const directive = /^✗ ([A-Za-z]+=)/.exec(line)?.[1];
      assert.ok(directive, `cannot parse: ${line}`);
      assert.ok(comments.includes(directive), `${path.basename(s)}: ${directive} is relaxed without a comment saying why`);
    }
  }
});

test('distccd-defaults turns Debian /etc/default/distcc variables into distccd options when sourced', (t) => {
  const dir = tempDir(t, 'distkit-defaults-');
  // It execs the distccd launcher, which execs NODE: point that at a program that prints its argv
  // and environment (the prefix holds no startup snapshot, so the launcher runs the plain script).
  const show = path.join(dir, 'show');
  fs.writeFileSync(show, '#!/bin/sh\nfor a in "$@"; do echo "arg:$a"; done\necho "env:${ALLOWEDNETS-unset}"\n', { mode: 0o755 });
  const prefix = path.join(dir, 'prefix');
  const env = { ...process.env, PREFIX: prefix, NODE: show, COMPILER_DIR: '/usr/lib/distcc' };
  fs.mkdirSync(path.join(prefix, 'sbin'), { recursive: true });
  renderTemplate(path.join(root, 'scripts/launcher/distccd'), path.join(prefix, 'sbin/distccd'), env, '0755');
  const launcher = path.join(dir, 'distccd-defaults');
  renderTemplate(path.join(root, 'scripts/launcher/distccd-defaults'), launcher, env, '0755');
  const script = `arg:${prefix}/lib/distkit/dist/src/cli/distccd.js`;
  const run = (vars: Record<string, string>): string[] => {
    const r = spawnSync(launcher, ['--no-detach'], { env: { PATH: process.env.PATH, ...vars }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim().split('\n');
  };
  assert.deepEqual(run({ ALLOWEDNETS: '127.0.0.1 10.0.0.0/8', NICE: '10', JOBS: '4', ZEROCONF: 'true', LISTENER: '127.0.0.1' }), [
    script, 'arg:--no-detach', 'arg:--allow', 'arg:127.0.0.1',
    'arg:--allow', 'arg:10.0.0.0/8', 'arg:--nice', 'arg:10', 'arg:--jobs', 'arg:4', 'arg:--zeroconf', 'env:unset',
  ]);
  // Debian's init script ignores a NICE outside 0..20 and ZEROCONF other than true/YES; so do we.
  assert.deepEqual(run({ ALLOWEDNETS: '', NICE: '25', JOBS: '', ZEROCONF: 'false' }), [
    script, 'arg:--no-detach', 'env:unset',
  ]);
  assert.deepEqual(run({ NICE: 'x' }), [script, 'arg:--no-detach', 'env:unset']);
});

/** The values of `Key=` lines in a unit or shell file (comments skipped, quotes removed). */
function settingsOf(file: string, key: string): string[] {
  return fs.readFileSync(path.join(root, file), 'utf8').split('\n')
    .filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1).replace(/^"(.*)"$/, '$1'));
}

/** Whether a listen address (unit ListenStream= or dc_server's -listen syntax) is reachable only from this host. */
function isLocalOnly(address: string): boolean {
  const a = address.replace(/^(IP|IPv4):/, '');
  return a.startsWith('/') || a.startsWith('UNIX:') || /^(127\.0\.0\.1|\[::1\]|localhost):\d+$/.test(a);
}

test('dc_server listens on loopback and its unix socket only when started by its unit or init script', () => {
  // The cache has no authentication and holds TLS secrets: the network is opened on purpose only.
  const socket = settingsOf('systemd/dc_server.socket', 'ListenStream');
  assert.ok(socket.length >= 2, `ListenStream= lines: ${socket.join(' ')}`);
  const execStart = settingsOf('systemd/dc_server.service', 'ExecStart').join(' ');
  const serviceListens = [...execStart.matchAll(/-listen (\S+)/g)].map((m) => m[1]!);
  assert.equal(serviceListens.length, socket.length, `dc_server.service's -listen repeat dc_server.socket's: ${execStart}`);
  const initListens = [...settingsOf('etc/default/dc_server', 'LISTEN'), ...settingsOf('etc/init.d/dc_server', 'LISTEN')];
  assert.equal(initListens.length, 2);
  for (const address of [...socket, ...serviceListens, ...initListens]) assert.ok(isLocalOnly(address), `${address} is reachable from the network`);
});

test('distccd under distccd.socket and distccd-stats.socket serves the counters page on the stats socket when run as the unit says', async (t) => {
  assert.deepEqual(settingsOf('systemd/distccd-stats.socket', 'Service'), ['distccd.service']);
  for (const address of settingsOf('systemd/distccd-stats.socket', 'ListenStream')) assert.ok(isLocalOnly(address), `${address} is reachable from the network`);
  const [fdName] = settingsOf('systemd/distccd-stats.socket', 'FileDescriptorName');
  // The distccd options of distccd.service (after the defaults helper), as systemd would pass them.
  const execStart = settingsOf('systemd/distccd.service', 'ExecStart')[0]!.split(/\s+/);
  const unitArgs = execStart.slice(1).filter((a, i, all) => a !== '--compiler-dir' && all[i - 1] !== '--compiler-dir');
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-stats-socket-'), 'masq'));
  const args = [...unitArgs, '--compiler-dir', masq, '--allow', '127.0.0.1', '--no-cache', ...KEEP_ROOT];
  // systemd names the compile socket's fd after its unit, the stats one by FileDescriptorName=.
  const { p, statsPort } = await onFreePort(async (port) => {
    const statsPort = await freePort();
    const p = start(t, 'systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '-l', `127.0.0.1:${statsPort}`,
      `--fdname=distccd.socket:${fdName}`, process.execPath, DISTCCD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    return (await p.waitForBind(/Listening on/)) === PORT_TAKEN ? PORT_TAKEN : { p, statsPort };
  });
  const page = await fetchStatsPage(statsPort);
  assert.match(page, /^HTTP\/1\.0 200 OK\n[^]*<distccstats>\n[^]*<\/distccstats>\n$/, `stats page:\n${page}\n${p.output()}`);
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});
