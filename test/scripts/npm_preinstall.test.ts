// A bare `npm ci` on a fresh Debian machine: the sd-notify addon cannot build without
// libsystemd-dev. npm runs every registry or tarball dependency's preinstall before any of their
// install scripts (linked `file:` directories and the root project's own preinstall only after
// them all), so a local tarball dependency's preinstall checks the build packages first: as root it installs the missing ones, otherwise it names them in one
// line and fails. Run here as npm runs it, with a dpkg-query that reports packages missing and an
// apt-get that records its calls, so nothing on this machine changes.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../support/temp_dir';

const REPO = path.resolve(__dirname, '../../..');
/** What the fake dpkg-query says is not installed (both are in scripts/build-packages.txt). */
const MISSING = ['g++', 'libsystemd-dev'];

/** A local package (a tarball, so npm installs it as a copy, with the registry packages) in package.json's dependencies. */
function localTarball(): { name: string; tarball: string } {
  const manifest = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const [name, spec] of Object.entries(manifest.dependencies ?? {})) {
    if (spec.startsWith('file:') && spec.endsWith('.tgz')) return { name, tarball: path.join(REPO, spec.slice('file:'.length)) };
  }
  assert.fail('no local tarball in package.json dependencies: npm ci builds the addons unchecked');
}

/** The package.json packed in `tarball`. */
function packedManifest(tarball: string): string {
  return execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' });
}

/** The preinstall script of that package, and where npm runs it (its copy in node_modules). */
function preinstall(): { dir: string; command: string } {
  const { name, tarball } = localTarball();
  const command = (JSON.parse(packedManifest(tarball)) as { scripts?: Record<string, string> }).scripts?.['preinstall'];
  assert.ok(command !== undefined, `${name} has no preinstall script`);
  return { dir: path.join(REPO, 'node_modules', name), command };
}

test('the packed preinstall package is scripts/npm-preinstall as committed', () => {
  assert.equal(packedManifest(localTarball().tarball), fs.readFileSync(path.join(REPO, 'scripts/npm-preinstall/package.json'), 'utf8'));
});

/** A bin directory with a dpkg-query that reports MISSING as unknown and an apt-get that records its arguments. */
function fakeDpkg(t: TestContext): { bin: string; calls: string } {
  const bin = tempDir(t, 'distkit-preinstall-', { mode: 0o755 });
  const calls = path.join(bin, 'apt-get.calls');
  fs.writeFileSync(path.join(bin, 'dpkg-query'), `#!/bin/sh
for last; do :; done
case " ${MISSING.join(' ')} " in *" $last "*) echo "dpkg-query: no packages found matching $last" >&2; exit 1 ;; esac
printf 'install ok installed'
`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'apt-get'), `#!/bin/sh\necho "$*" >> ${calls}\n`, { mode: 0o755 });
  return { bin, calls };
}

/** Runs the preinstall as npm does (sh -c in its directory), `bin` first on PATH (only: `bin` alone). */
function runPreinstall(bin: string, asUser: readonly string[], only = false): { status: number | null; stdout: string; stderr: string } {
  const { dir, command } = preinstall();
  const env = { ...process.env, PATH: only ? bin : `${bin}:${process.env['PATH']}` };
  const run = spawnSync(asUser[0] ?? 'sh', [...asUser.slice(1), ...(asUser.length > 0 ? ['sh'] : []), '-c', command], { cwd: dir, env, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('npm preinstall names the missing build packages in one line and fails when not run as root', (t) => {
  const { bin, calls } = fakeDpkg(t);
  const run = runPreinstall(bin, ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups']);
  assert.notEqual(run.status, 0);
  assert.equal(run.stdout, '');
  assert.equal(run.stderr, `distkit: missing system packages, install them first: sudo apt-get install ${MISSING.join(' ')}\n`);
  assert.equal(fs.existsSync(calls), false, 'apt-get is not run');
});

test('npm preinstall installs the missing build packages with apt-get when run as root', { skip: process.getuid?.() !== 0 && 'needs root' }, (t) => {
  const { bin, calls } = fakeDpkg(t);
  const run = runPreinstall(bin, []);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, `distkit: installing system packages: ${MISSING.join(' ')}\n`);
  assert.deepEqual(fs.readFileSync(calls, 'utf8').split('\n').filter((l) => l.startsWith('install ')), [`install -y -q --no-install-recommends ${MISSING.join(' ')}`]);
});

test('npm preinstall does nothing when every build package is installed', (t) => {
  const { bin, calls } = fakeDpkg(t);
  fs.writeFileSync(path.join(bin, 'dpkg-query'), "#!/bin/sh\nprintf 'install ok installed'\n", { mode: 0o755 });
  const run = runPreinstall(bin, ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups']);
  assert.deepEqual(run, { status: 0, stdout: '', stderr: '' });
  assert.equal(fs.existsSync(calls), false);
});

test('npm preinstall passes when there is no dpkg-query to ask (not Debian: the build says what it misses)', (t) => {
  const bin = tempDir(t, 'distkit-preinstall-', { mode: 0o755 });
  for (const tool of ['sh', 'bash', 'dirname']) fs.symlinkSync(spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), path.join(bin, tool));
  assert.deepEqual(runPreinstall(bin, [], true), { status: 0, stdout: '', stderr: '' });
});
