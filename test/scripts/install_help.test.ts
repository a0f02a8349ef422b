// scripts/install --help: the usage an operator reads before installing (its header comment),
// never the script's own code, and every option the script accepts named in it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const INSTALL = path.resolve(__dirname, '../../../scripts/install');

test('scripts/install --help prints its usage and every option it accepts when asked, and exits 0', () => {
  for (const flag of ['--help', '-h']) {
    const r = spawnSync('bash', [INSTALL, flag], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${flag}: exit ${r.status}: ${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^Usage: scripts\/install /m);
    // Shell code (`set`, expansions, case arms) is not usage text.
    const code = r.stdout.split('\n').filter((l) => /^\s*set -|\$\(|\$\{|;;/.test(l));
    assert.deepEqual(code, [], `${flag} printed code`);
    const accepted = [...fs.readFileSync(INSTALL, 'utf8').matchAll(/^\s+(--[a-z-]+)\)/gm)].map((m) => m[1]!);
    assert.ok(accepted.length >= 4, `options parsed from the script: ${accepted.join(' ')}`);
    for (const option of accepted) assert.match(r.stdout, new RegExp(`${option}\\b`), `${flag} does not name ${option}`);
    assert.match(r.stdout, /DESTDIR=/);
  }
});
