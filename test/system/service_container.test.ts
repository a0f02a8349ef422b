// The service-integration proof: scripts/container-test.sh installs this build into a Debian
// bookworm root, boots systemd as PID 1 in it and drives distccd, dc_server and dc_client through
// their sockets, the watchdog, a drained stop, inetd and `service NAME start` with and without
// systemd, then checks that uninstall leaves the root as it was. Each check prints PASS/FAIL;
// this test fails on any FAIL, including a program that is not built yet (never a silent skip).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../../..');

test('distkit services start, serve, survive and uninstall cleanly when run under systemd, inetd and sysv in a container', async () => {
  const child = spawn('bash', [path.join(root, 'scripts/container-test.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer): void => {
    out += b.toString();
    process.stdout.write(b);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const failed = out.split('\n').filter((l) => /\] FAIL /.test(l));
  assert.equal(code, 0, `container test failed (exit ${code}):\n${failed.join('\n') || out.slice(-3000)}`);
  assert.match(out, /container test: \d+ passed, 0 failed, took \d+s/);
});
