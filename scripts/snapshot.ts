// Builds distccd's V8 startup snapshot: dist/snapshot/distccd.blob, with a stamp file beside it.
//
// In inetd, ssh and systemd Accept=yes mode every compile starts a new distccd, and loading our
// ~45 modules (read, compile, run their top level) is a fixed cost of every job. A startup
// snapshot holds the heap as it stands after that loading, so `node --snapshot-blob blob -- ARGS`
// starts where `node dist/src/cli/distccd.js ARGS` would be after its requires.
//
// `node --build-snapshot` runs one script that may require only builtins, so this file bundles
// the module graph of dist/src/cli/distccd.js into dist/snapshot/distccd-entry.js: each module
// becomes a function in a table, with a require that maps the literal specifiers tsc emitted to
// table entries (distccd's lazy requires included, and the snapshot loads those modules too). Native addons (packages with a binding.gyp) cannot live in a snapshot: at build
// time their require returns a stand-in that loads the addon on first use; when the snapshot
// starts, every addon a module required at load time is loaded at once, before anything runs,
// so the privilege drop never has to read node_modules (as with the plain script).
//
// The blob only works with the node binary and V8 flags it was built with: node refuses any other
// one with exit 14 before reading a byte of stdin. So it is built with NODE_OPTIONS cleared, then
// checked by running `--version` through it, and the stamp file is given the node binary's mtime
// (touch -r): the launcher uses the blob only while node's mtime still equals the stamp's and
// NODE_OPTIONS is empty, and runs the plain script otherwise. A failed build or check removes the
// blob (the launcher then runs the plain script) and says so; it never fails the build.
//
// Run: node dist/scripts/snapshot.js (npm run build does it after tsc).

import fs from 'node:fs';
import path from 'node:path';
import { builtinModules } from 'node:module';
import { execFileSync } from 'node:child_process';

const dist = path.resolve(__dirname, '..');
const outDir = path.join(dist, 'snapshot');
const entry = path.join(outDir, 'distccd-entry.js');
const blob = path.join(outDir, 'distccd.blob');
const stamp = `${blob}.node-mtime`;
const main = path.join(dist, 'src', 'cli', 'distccd.js');

const BUILTINS = new Set(builtinModules);
/** require("x") / require('x') with a literal: all tsc emits, and all our own lazy requires use. */
const REQUIRE_CALL = /\brequire\((['"])([^'"\n]+)\1\)/g;

type Target = { readonly module: number } | { readonly builtin: string } | { readonly addon: string } | { readonly runtime: string };

/**
 * Packages left out of the snapshot and loaded from node_modules when first used: prom-client,
 * needed only with --metrics-listen, and ioredis, needed only with --cache-redis (both require
 * optional packages the bundle cannot resolve, such as debug's supports-color, and loading them
 * would cost every process per job). Modules that require them get the stand-in an addon gets,
 * which is not loaded at start.
 */
const RUNTIME_PACKAGES: ReadonlySet<string> = new Set(['prom-client', 'ioredis']);
interface BundledModule {
  readonly id: number;
  readonly file: string;
  readonly source: string;
  readonly targets: Record<string, Target>;
}

/** Whether `spec` (from `from`) names a package with native code, by its binding.gyp. */
function addonPackage(spec: string, from: string): boolean {
  if (spec.startsWith('.') || spec.startsWith('/')) return false;
  const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
  const manifest = require.resolve(`${name}/package.json`, { paths: [path.dirname(from)] });
  return fs.existsSync(path.join(path.dirname(manifest), 'binding.gyp'));
}

function collect(start: string): BundledModule[] {
  const byFile = new Map<string, BundledModule>();
  const visit = (file: string): number => {
    const known = byFile.get(file);
    if (known) return known.id;
    const source = fs.readFileSync(file, 'utf8').replace(/^#!.*/, '');
    const record: BundledModule = { id: byFile.size, file, source, targets: {} };
    byFile.set(file, record);
    for (const [, , spec] of source.matchAll(REQUIRE_CALL)) {
      if (spec === undefined || spec in record.targets) continue;
      if (spec.startsWith('node:') || BUILTINS.has(spec)) record.targets[spec] = { builtin: spec };
      else if (RUNTIME_PACKAGES.has(spec)) record.targets[spec] = { runtime: spec };
      else if (addonPackage(spec, file)) record.targets[spec] = { addon: spec };
      else record.targets[spec] = { module: visit(require.resolve(spec, { paths: [path.dirname(file)] })) };
    }
    return record.id;
  };
  visit(start);
  return [...byFile.values()];
}

/** The snapshot's entry script: the module table, its require, and the deserialize main. */
function render(modules: readonly BundledModule[]): string {
  const relative = (file: string): string => path.relative(dist, file);
  // It knows how node was told where the blob is (startedFromSnapshot uses it too).
  const daemonize = modules.find((m) => m.file === path.join(dist, 'src', 'activation', 'daemonize.js'));
  if (daemonize === undefined) throw new Error('src/activation/daemonize.js is not in distccd\'s module graph');
  const table = modules.map((m) =>
    `table[${m.id}] = { file: ${JSON.stringify(relative(m.file))}, targets: ${JSON.stringify(m.targets)}, ` +
    `run: function (exports, require, module, __filename, __dirname) {${m.source}\n} };`);
  return `'use strict';
// Generated by scripts/snapshot.ts from dist/src/cli/distccd.js: do not edit.
const v8 = require('node:v8');
const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');
const buildRequire = require;
let runtimeRequire; // set when the snapshot starts: resolves from the installed dist/src/cli
let dist = ${JSON.stringify(dist)};
const table = [];
const cache = [];
const addons = new Map();

function addon(spec, eager = true) {
  let entry = addons.get(spec);
  if (entry === undefined) {
    const state = { loaded: undefined, bound: new Map() };
    const load = () => (state.loaded ??= runtimeRequire(spec));
    const proxy = new Proxy({}, {
      get(_, key) {
        if (key === '__esModule') return true; // tsc's __importStar then keeps this stand-in as is
        const real = load();
        if (key === 'default') return real;
        const value = real[key];
        if (typeof value !== 'function') return value;
        let bound = state.bound.get(key);
        if (bound === undefined) state.bound.set(key, (bound = value.bind(real)));
        return bound;
      },
      has: (_, key) => key in load(),
      ownKeys: () => Reflect.ownKeys(load()),
      getOwnPropertyDescriptor: (_, key) => {
        const d = Object.getOwnPropertyDescriptor(load(), key);
        return d && { ...d, configurable: true };
      },
    });
    entry = { proxy, load, eager };
    addons.set(spec, entry);
    // Required while running (sd-notify, when NOTIFY_SOCKET is set): load it now, as a plain
    // require would, not at first use, which may come after the privilege drop.
    if (runtimeRequire !== undefined && eager) load();
  }
  return entry.proxy;
}

function load(id) {
  if (cache[id] !== undefined) return cache[id].exports;
  const m = table[id];
  const module = { exports: {} };
  cache[id] = module;
  const file = path.join(dist, m.file);
  const require = (spec) => {
    const target = m.targets[spec];
    if (target === undefined) throw new Error('distccd snapshot: ' + m.file + ' requires ' + JSON.stringify(spec) + ', which the bundle does not hold');
    if (target.module !== undefined) return load(target.module);
    if (target.addon !== undefined) return addon(target.addon);
    if (target.runtime !== undefined) return addon(target.runtime, false);
    return (runtimeRequire ?? buildRequire)(target.builtin);
  };
  m.run.call(module.exports, module.exports, require, module, file, path.dirname(file));
  return module.exports;
}

${table.join('\n')}

const distccd = load(0);
// distccd requires most of its modules where a step first needs them (--version needs none of
// them): load them all now, so that a process per job finds every one in the heap.
for (let id = 1; id < table.length; id++) load(id);

v8.startupSnapshot.setDeserializeMainFunction(() => {
  // The blob sits in DIST/snapshot/: the addons resolve from DIST/src/cli like the plain script's
  // (from its real path, as node does for a main script reached through a symlink).
  const blob = load(${daemonize.id}).snapshotBlob();
  if (blob !== undefined) dist = path.dirname(path.dirname(fs.realpathSync(blob)));
  runtimeRequire = createRequire(path.join(dist, 'src', 'cli', 'distccd.js'));
  for (const { load, eager } of addons.values()) if (eager) load();
  distccd.run(process.argv.slice(1));
});
`;
}

function removeBlob(): void {
  fs.rmSync(blob, { force: true });
  fs.rmSync(stamp, { force: true });
}

function build(): void {
  fs.mkdirSync(outDir, { recursive: true });
  removeBlob();
  const modules = collect(main);
  fs.writeFileSync(entry, render(modules));
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // its V8 flags would be baked in, and the launcher runs without them
  const partial = `${blob}.tmp`;
  execFileSync(process.execPath, ['--snapshot-blob', partial, '--build-snapshot', entry], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const viaBlob = execFileSync(process.execPath, ['--snapshot-blob', partial, '--', '--version'], { env, encoding: 'utf8' });
  const viaScript = execFileSync(process.execPath, [main, '--version'], { env, encoding: 'utf8' });
  if (viaBlob !== viaScript) throw new Error(`distccd --version differs through the blob:\n${viaBlob}\nversus\n${viaScript}`);
  fs.renameSync(partial, blob);
  fs.writeFileSync(stamp, `${process.execPath}\n`);
  execFileSync('touch', ['-r', fs.realpathSync(process.execPath), stamp]);
  console.log(`snapshot: ${path.relative(process.cwd(), blob)} (${modules.length} modules, ${(fs.statSync(blob).size / 1048576).toFixed(1)} MiB) for ${process.execPath} ${process.version}`);
}

try {
  build();
} catch (error) {
  removeBlob();
  fs.rmSync(`${blob}.tmp`, { force: true });
  const reason = error instanceof Error ? error.message : String(error);
  console.error(`snapshot: not built, distccd will start from dist/src/cli/distccd.js: ${reason}`);
}
