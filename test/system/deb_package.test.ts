// The Debian package (`npm run deb`, scripts/deb/build.sh) built from this tree: lintian finds no
// error in it, it holds what scripts/install installs (the built JavaScript, the native addons,
// units, init scripts, defaults, logrotate files, man pages, inetd examples) laid out for /usr,
// its addons load from the unpacked tree, it depends on what they link, and every file it shares
// with Debian's distcc is one its preinst diverts. Needs root (lintian and distcc are installed
// by scripts/system-deps.sh from scripts/system-packages.txt).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from '../support/render_template';
import { tempDir, type AfterHook } from '../support/temp_dir';

const isRoot = process.getuid?.() === 0;

function run(cmd: string, args: string[], options: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  assert.equal(r.error, undefined, `${cmd} did not run: ${r.error?.message}`);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

interface Built {
  deb: string;
  /** Every path in the package, without the leading '.', directories ending in '/'. */
  paths: Set<string>;
  /** The symlinks in the package: path → target. */
  links: Map<string, string>;
}

function buildDeb(t: AfterHook): Built {
  const out = tempDir(t, 'distkit-deb-');
  const deb = run('bash', [path.join(REPO, 'scripts/deb/build.sh'), out]).trim();
  assert.equal(path.dirname(deb), out, `build.sh printed ${deb}, not a path in ${out}`);
  const version = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version as string;
  const arch = run('dpkg', ['--print-architecture']).trim();
  assert.equal(path.basename(deb), `distkit_${version}_${arch}.deb`);
  const paths = new Set<string>();
  const links = new Map<string, string>();
  for (const line of run('dpkg-deb', ['--contents', deb]).trimEnd().split('\n')) {
    const name = line.split(/\s+/).slice(5).join(' ');
    const [p, target] = name.split(' -> ');
    paths.add(p.replace(/^\./, ''));
    if (target !== undefined) links.set(p.replace(/^\./, ''), target);
  }
  return { deb, paths, links };
}

const field = (deb: string, name: string): string => run('dpkg-deb', ['--field', deb, name]).trim();
const controlFile = (deb: string, name: string): string => run('dpkg-deb', ['--info', deb, name]);

test('the Debian package has no lintian error and holds every installed file when built', { skip: !isRoot && 'needs root' }, async (t) => {
  const { deb, paths, links } = buildDeb(t);

  await t.test('lintian reports no error', () => {
    const r = spawnSync('lintian', [deb], { encoding: 'utf8' });
    assert.equal(r.error, undefined, `lintian did not run (apt-get install lintian): ${r.error?.message}`);
    const errors = `${r.stdout}`.split('\n').filter((l) => l.startsWith('E: '));
    assert.deepEqual(errors, [], `lintian errors:\n${r.stdout}${r.stderr}`);
    assert.equal(r.status, 0, `lintian failed (${r.status}):\n${r.stdout}${r.stderr}`);
  });

  await t.test('the package holds the programs, addons, units, init scripts, defaults, man pages and examples', () => {
    const lib = '/usr/lib/distkit';
    const wanted = [
      `${lib}/package.json`,
      ...['distccd', 'dc_server', 'dc_client', 'dc_snoop'].map((p) => `${lib}/dist/src/cli/${p}.js`),
      ...['distccd', 'dc_server', 'dc_client'].map((p) => `/usr/sbin/${p}`),
      '/usr/bin/dc_snoop', '/usr/bin/distccd',
      `${lib}/libexec/distkit-postinst`, `${lib}/libexec/distccd-defaults`, '/usr/lib/sysusers.d/distkit.conf',
      ...fs.readdirSync(path.join(REPO, 'systemd')).map((u) => `/usr/lib/systemd/system/${u}`),
      '/etc/init.d/dc_server', '/etc/init.d/dc_client', '/etc/logrotate.d/distcache',
      '/usr/share/distkit/etc/init.d/distcc', '/usr/share/distkit/etc/logrotate.d/distcc',
      ...['distcc', 'dc_server', 'dc_client'].map((d) => `/usr/share/distkit/etc/default/${d}`),
      ...fs.readdirSync(path.join(REPO, 'src/man')).map((m) => `/usr/share/man/man${m.slice(-1)}/${m}.gz`),
      '/usr/share/distkit/inetd/inetd.conf', '/usr/share/distkit/inetd/services', '/usr/share/distkit/inetd/xinetd.d/distcc',
      '/usr/share/doc/distkit/copyright', '/usr/share/doc/distkit/changelog.gz',
    ];
    // Every addon the built tree loads (node_modules/NAME/build/Release/*.node) is in the package.
    const nm = path.join(REPO, 'node_modules');
    for (const dep of Object.keys(JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).dependencies as object)) {
      const release = path.join(nm, dep, 'build/Release');
      if (!fs.existsSync(release)) continue;
      for (const f of fs.readdirSync(release).filter((n) => n.endsWith('.node'))) wanted.push(`${lib}/node_modules/${dep}/build/Release/${f}`);
    }
    assert.ok(wanted.some((p) => p.endsWith('/distkit_spawn.node')), 'no native addon built in node_modules (npm ci first)');
    const missing = wanted.filter((p) => !paths.has(p));
    assert.deepEqual(missing, [], 'files missing from the package');
    assert.equal(links.get('/usr/bin/distccd'), '../sbin/distccd');
    // Not for /usr/local, no build leftovers, no installer manifest (dpkg keeps the list).
    const stray = [...paths].filter((p) => p.startsWith('/usr/local') || /\.(o|d|mk)$|\/obj\.target\/|\/MANIFEST$/.test(p));
    assert.deepEqual(stray, [], 'files that have no place in the package');
  });

  await t.test('the files in /etc are conffiles and /etc/default is left to postinst', () => {
    const etc = [...paths].filter((p) => p.startsWith('/etc/') && !p.endsWith('/')).sort();
    const conffiles = controlFile(deb, 'conffiles').trim().split('\n').sort();
    assert.deepEqual(conffiles, etc);
    assert.ok(!etc.some((p) => p.startsWith('/etc/default/')), 'Debian\'s distcc writes /etc/default/distcc from its postinst: a conffile would clash');
  });

  await t.test('the package depends on nodejs 20 and on what its addons link', () => {
    const depends = field(deb, 'Depends').split(/,\s*/);
    assert.ok(depends.includes('nodejs (>= 20)'), `Depends: ${depends.join(', ')}`);
    for (const lib of ['libc6', 'libsystemd0']) assert.ok(depends.some((d) => d.startsWith(`${lib} `)), `Depends lacks ${lib}: ${depends.join(', ')}`);
  });

  await t.test('every file it shares with Debian\'s distcc is diverted by preinst and put back by postrm', () => {
    const distcc = run('dpkg-query', ['-L', 'distcc']).trimEnd().split('\n');
    // postinst puts our distcc init script and logrotate file in /etc: those two are shared too.
    const shared = distcc.filter((p) => (paths.has(p) && !paths.has(`${p}/`)) || p === '/etc/init.d/distcc' || p === '/etc/logrotate.d/distcc');
    assert.ok(shared.includes('/usr/bin/distccd'), `dpkg -L distcc: ${distcc.join(' ')}`);
    const listed = (script: string): string[] => {
      const m = /^diverted="([^"]*)"/m.exec(controlFile(deb, script));
      assert.ok(m, `${script} has no diverted= list`);
      return m[1].split(' ').sort();
    };
    assert.deepEqual(listed('preinst'), [...shared].sort());
    assert.deepEqual(listed('postrm'), listed('preinst'));
  });

  await t.test('the native addons load from the unpacked package', () => {
    const root = tempDir(t, 'distkit-deb-x-');
    run('dpkg-deb', ['--extract', deb, root]);
    const modules = path.join(root, 'usr/lib/distkit/node_modules');
    const addons = fs.readdirSync(modules).filter((d) => fs.existsSync(path.join(modules, d, 'build/Release')));
    assert.ok(addons.length >= 4, `addons in the package: ${addons.join(' ')}`);
    for (const a of addons) run(process.execPath, ['-e', 'require(process.argv[1])', path.join(modules, a)]);
    const out = run(process.execPath, [path.join(root, 'usr/lib/distkit/dist/src/cli/distccd.js'), '--help']);
    assert.match(out, /distccd/);
  });
});
