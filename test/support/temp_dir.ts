// The one temp-dir helper of the tests: a fresh directory under os.tmpdir(), removed when the
// test ends (t.after), whatever way it ends.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Anything with node:test's t.after (a TestContext, a suite context). */
export interface AfterHook {
  after(fn: () => unknown): void;
}

/**
 * mkdtemp's 0700 keeps a tree private; `mode: 0o755` lets other users in (a daemon that drops
 * privileges, a client run as nobody).
 */
export function tempDir(t: AfterHook, prefix = 'distkit-test-', options: { mode?: number } = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (options.mode !== undefined) fs.chmodSync(dir, options.mode);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
