// Renders an installed-file template (a launcher, a unit, an inetd or xinetd entry) with
// scripts/render.sh, exactly as scripts/install does, so what the tests run is what gets installed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** The repository (tests run from dist/test/...). */
export const REPO = path.resolve(__dirname, '../../..');

/** Renders `src` (absolute, or relative to the repository) to `dst`; `env` gives PREFIX, NODE and COMPILER_DIR. */
export function renderTemplate(src: string, dst: string, env: NodeJS.ProcessEnv, mode = '0644'): void {
  const r = spawnSync('sh', [path.join(REPO, 'scripts/render.sh'), path.resolve(REPO, src), dst, mode], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, `render.sh ${src} failed: ${r.stderr}`);
}
