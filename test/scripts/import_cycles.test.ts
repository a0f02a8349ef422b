import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { findCycles, readImportGraph } from '../../scripts/import_cycles';
import { tempDir } from '../support/temp_dir';

const SCRIPT = path.resolve(__dirname, '../../scripts/import_cycles.js');

/** A source tree of these files under a temp dir removed after the test. */
function tree(t: TestContext, files: Record<string, string>): string {
  const root = tempDir(t, 'distkit-cycles-');
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  }
  return root;
}

test('readImportGraph counts type-only imports, re-exports, index folders and lazy requires when it reads a tree', (t) => {
  const root = tree(t, {
    'a.ts': "import type { B } from './b';\nexport * from './c/index';\n",
    'b.ts': "export type B = number;\nconst d = require('./d') as typeof import('./d');\n",
    'c/index.ts': "import fs from 'node:fs';\nexport const c = fs;\n",
    'd.ts': "import { x } from 'some-package';\nexport const d = x;\n",
  });
  const graph = readImportGraph(root);
  assert.deepEqual(Object.fromEntries(graph), { 'a.ts': ['b.ts', 'c/index.ts'], 'b.ts': ['d.ts'], 'c/index.ts': [], 'd.ts': [] });
  assert.deepEqual(findCycles(graph), []);
});

test('findCycles names each cycle as a path when files import each other', () => {
  const graph = new Map([
    ['log/configure.ts', ['log/index.ts']],
    ['log/index.ts', ['log/configure.ts']],
    ['mode.ts', ['options.ts']],
    ['options.ts', ['other.ts']],
    ['other.ts', ['mode.ts']],
    ['self.ts', ['self.ts']],
    ['leaf.ts', []],
  ]);
  assert.deepEqual(findCycles(graph).sort(), [
    ['log/configure.ts', 'log/index.ts', 'log/configure.ts'],
    ['mode.ts', 'options.ts', 'other.ts', 'mode.ts'],
    ['self.ts', 'self.ts'],
  ]);
});

test('the import_cycles script exits 1 naming the cycle when a type-only import closes one', (t) => {
  const root = tree(t, {
    'activation/mode.ts': "import type { ModeRequest } from './options';\nexport type M = ModeRequest;\n",
    'activation/options.ts': "import type { M } from './mode';\nexport type ModeRequest = M | 'auto';\n",
  });
  const run = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /activation\/mode\.ts -> activation\/options\.ts -> activation\/mode\.ts/);
  assert.match(run.stdout, /import graph: 2 files, 2 imports/);
});

test('the import_cycles script exits 0 when the arrows point one way', (t) => {
  const root = tree(t, { 'cli/main.ts': "import { log } from '../log/index';\nlog();\n", 'log/index.ts': 'export function log(): void {}\n' });
  const out = execFileSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
  assert.match(out, /cli -> log {2}1/);
  assert.match(out, /import cycles: none/);
});
