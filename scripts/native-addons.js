#!/usr/bin/env node
// Native addons follow node: each dependency with a binding.gyp (lzo, posix, sd-notify,
// distkit-spawn) is built for one node ABI (NODE_MODULE_VERSION, process.versions.modules), and
// after a node upgrade it fails at load with ERR_DLOPEN_FAILED ("compiled against a different
// Node.js version"). This loads each one in a child node, the way the programs will, and when any
// fails rebuilds them all (`npm rebuild`, headers from npm_config_nodedir) and loads them again.
// Our own addon (a `file:` dependency, src/native/spawn) is also rebuilt when its sources are
// newer than its binary: a pull that changes spawn.c does not reinstall node_modules, and an old
// binary would load and lack the new functions. Exits 1 only when they still fail after the rebuild. Run by scripts/node-deps.sh, so by
// `npm start`, `npm test` and `npm run bench`; plain JavaScript because it runs before the build.
//
// Usage: node scripts/native-addons.js [ROOT]    (default: this repository)

'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(process.argv[2] ?? path.join(__dirname, '..'));

/** The dependencies with native code, found as snapshot.ts finds them: by their binding.gyp. */
function addonNames() {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  return Object.keys(manifest.dependencies ?? {}).filter((name) => fs.existsSync(path.join(root, 'node_modules', name, 'binding.gyp')));
}

/** Loads each addon in a fresh node (a failed dlopen must not linger here); returns the failures. */
function loadFailures(names) {
  const probe = `
    const failed = [];
    for (const name of ${JSON.stringify(names)}) {
      try { require(name); } catch (error) { failed.push({ name, code: error.code ?? 'error', message: String(error.message).replace(/\\s+/g, ' ').trim() }); }
    }
    process.stdout.write(JSON.stringify(failed));`;
  const run = spawnSync(process.execPath, ['-e', probe], { cwd: root, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`the addon probe itself failed (status ${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** Newest mtime of the files directly in `dir` whose names pass `keep`; 0 when there is none. */
function newest(dir, keep) {
  if (!fs.existsSync(dir)) return 0;
  return Math.max(0, ...fs.readdirSync(dir).filter(keep).map((f) => fs.statSync(path.join(dir, f)).mtimeMs));
}

/** The addons built from this repository's own sources whose binary is older than a source. */
function staleOwnAddons(names) {
  return names
    .map((name) => ({ name, dir: fs.realpathSync(path.join(root, 'node_modules', name)) }))
    .filter(({ dir }) => !dir.split(path.sep).includes('node_modules'))
    .filter(({ dir }) => newest(path.join(dir, 'build', 'Release'), (f) => f.endsWith('.node')) < newest(dir, (f) => /\.(c|cc|h)$|^binding\.gyp$/.test(f)))
    .map(({ name }) => ({ name, code: 'stale', message: 'its sources are newer than its build' }));
}

function main() {
  const names = addonNames();
  const failures = [...loadFailures(names), ...staleOwnAddons(names)];
  if (failures.length === 0) return;
  const abi = `node ${process.version}, ABI ${process.versions.modules}`;
  for (const f of failures) console.error(f.code === 'stale' ? `native-addons: ${f.name} must be rebuilt: ${f.message}` : `native-addons: ${f.name} does not load with ${abi} (${f.code}: ${f.message})`);
  console.error(`native-addons: rebuilding ${names.join(' ')} for ${abi}`);
  const env = { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir || '/usr' };
  execFileSync('npm', ['rebuild', ...names], { cwd: root, env, stdio: ['ignore', process.stderr, process.stderr] });
  const still = loadFailures(names);
  if (still.length > 0) {
    for (const f of still) console.error(`native-addons: ${f.name} still does not load after the rebuild (${f.code}: ${f.message})`);
    process.exit(1);
  }
  console.error(`native-addons: ${names.join(' ')} rebuilt and loaded`);
}

main();
