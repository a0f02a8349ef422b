import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../support/temp_dir';

const REPO = path.resolve(__dirname, '../../..');
const SCRIPT = path.join(REPO, 'scripts/native-addons.js');
/** Node 18's NODE_MODULE_VERSION: an addon built with it is what a node upgrade leaves behind. */
const OLD_ABI = 108;

/** A project holding a copy of the posix addon (and nan, which its build needs), removed after the test. */
function projectWithPosix(t: TestContext): string {
  const root = tempDir(t, 'distkit-addons-');
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'addon-probe', private: true, dependencies: { posix: '4.2.0', nan: '*' } }));
  for (const name of ['posix', 'nan']) fs.cpSync(path.join(REPO, 'node_modules', name), path.join(root, 'node_modules', name), { recursive: true, dereference: true });
  return root;
}

function loads(root: string, name: string): { ok: boolean; output: string } {
  const run = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(name)})`], { cwd: root, encoding: 'utf8' });
  return { ok: run.status === 0, output: run.stderr };
}

test('native-addons rebuilds an addon when it was built for another node ABI', { timeout: 300_000 }, (t) => {
  const root = projectWithPosix(t);
  const env = { ...process.env, npm_config_nodedir: process.env['npm_config_nodedir'] || '/usr' };
  // What a node upgrade leaves: the addon compiled for an older NODE_MODULE_VERSION.
  execFileSync('npm', ['rebuild', 'posix'], { cwd: root, env: { ...env, CXXFLAGS: `-DNODE_EMBEDDER_MODULE_VERSION=${OLD_ABI}` }, stdio: 'ignore' });
  const stale = loads(root, 'posix');
  assert.equal(stale.ok, false);
  assert.match(stale.output, new RegExp(`NODE_MODULE_VERSION ${OLD_ABI}`));

  const run = spawnSync(process.execPath, [SCRIPT, root], { env, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`posix does not load with node ${process.version.replace(/\./g, '\\.')}, ABI ${process.versions.modules} \\(ERR_DLOPEN_FAILED: .*NODE_MODULE_VERSION ${OLD_ABI}`));
  assert.match(run.stderr, /posix rebuilt and loaded/);
  assert.equal(loads(root, 'posix').ok, true);

  // Now they load: the next run neither rebuilds nor says anything.
  const again = spawnSync(process.execPath, [SCRIPT, root], { env, encoding: 'utf8' });
  assert.equal(again.status, 0);
  assert.equal(again.stderr, '');
});

test('native-addons rebuilds the project\'s own addon when its source is newer than its binary', { timeout: 300_000 }, (t) => {
  // A project whose file: dependency lives in its own tree, as src/native/spawn does here.
  const root = tempDir(t, 'distkit-own-addon-');
  const own = path.join(root, 'native');
  fs.cpSync(path.join(REPO, 'src/native/spawn'), own, { recursive: true });
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'own-addon-probe', private: true, dependencies: { 'distkit-spawn': 'file:native' } }));
  fs.mkdirSync(path.join(root, 'node_modules'));
  fs.symlinkSync('../native', path.join(root, 'node_modules', 'distkit-spawn'));
  const binary = path.join(own, 'build/Release/distkit_spawn.node');
  const env = { ...process.env, npm_config_nodedir: process.env['npm_config_nodedir'] || '/usr' };
  // What a pull that changes spawn.c leaves: a binary that loads, older than its source.
  const past = new Date(Date.now() - 3_600_000);
  fs.utimesSync(binary, past, past);
  assert.equal(loads(root, 'distkit-spawn').ok, true);

  const run = spawnSync(process.execPath, [SCRIPT, root], { env, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /distkit-spawn must be rebuilt: its sources are newer than its build/);
  assert.ok(fs.statSync(binary).mtimeMs > fs.statSync(path.join(own, 'spawn.c')).mtimeMs, 'the binary was built again');

  const again = spawnSync(process.execPath, [SCRIPT, root], { env, encoding: 'utf8' });
  assert.equal(again.status, 0);
  assert.equal(again.stderr, '');
});
