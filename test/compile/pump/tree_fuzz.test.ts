import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PumpTree } from '../../../src/compile/pump/tree';
import { DistkitError } from '../../../src/errors';

/** Deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await listAll(p)));
  }
  return out;
}

test('PumpTree never creates or changes anything outside its root when fed random NAMEs and LINKs', async (t) => {
  const parent = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-treefuzz-')));
  t.after(() => fs.rm(parent, { recursive: true, force: true }));
  const outside = path.join(parent, 'outside');
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'victim'), 'precious');
  const words = ['a', 'b', '..', '.', 'usr', 'include', 'outside', 'victim', ''];
  for (let seed = 1; seed <= 12; seed++) {
    const rand = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const randomPath = (): string => Array.from({ length: 1 + Math.floor(rand() * 5) }, () => pick(words)).join('/');
    const tree = await PumpTree.create({ tmpDir: parent });
    const up = '../'.repeat(Math.floor(rand() * 12));
    let refused = 0;
    let done = 0;
    for (let i = 0; i < 60; i++) {
      const name = '/' + randomPath();
      const op = rand();
      try {
        if (op < 0.45) await tree.writeFile(name, Buffer.from(`seed ${seed} op ${i}`));
        else if (op < 0.9) {
          const kind = rand();
          const target = kind < 0.3 ? '/' + randomPath() : kind < 0.6 ? up + randomPath() : kind < 0.8 ? randomPath() : up + name.slice(1);
          await tree.makeLink(name, target === '' ? '.' : target);
        } else await tree.makeCwd(name);
        done++;
      } catch (err) {
        if (!(err instanceof DistkitError) || err.code !== 'unsafe-path') {
          // Ordinary fs errors (EEXIST on a dir, ENOTDIR...) are fine; anything else is a bug.
          const code = (err as NodeJS.ErrnoException).code;
          assert.ok(code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'ELOOP' || code === 'ENOENT', `seed ${seed} op ${i}: ${String(err)}`);
        }
        refused++;
      }
    }
    await tree.verify().catch((err: unknown) => assert.ok(err instanceof DistkitError, String(err)));
    assert.ok(refused > 0 && done > 0, `seed ${seed} exercised refusals (${refused}) and successes (${done})`);
    await tree.remove();
  }
  assert.deepEqual((await listAll(parent)).sort(), [outside, path.join(outside, 'victim')]);
  assert.equal(await fs.readFile(path.join(outside, 'victim'), 'utf8'), 'precious');
});
