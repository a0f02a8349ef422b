// distccd serving one connection on stdin/stdout: over ssh (the real client with DISTCC_SSH
// pointing at a script that runs our distccd --inetd on two pipes) and as inetd does it (a
// connected TCP socket as fd 0/1), where no --allow means allow and a denied peer exits 113.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { clientEnv, DISTCCD, KEEP_ROOT, makeMasqueradeDir, run, tempDir } from '../support/distccd_harness';
import { encodeRequest, sendRaw, type RawAnswer } from '../support/raw_distcc_client';
import { settledListing } from '../support/settled_listing';

const SOURCE = 'int f(int x) { return x + 1; }\n';

for (const [protocol, suffix] of [[1, ''], [2, ',lzo']] as const) {
  test(`distccd --inetd compiles for the real client over ssh pipes when protocol ${protocol} is used`, async (t) => {
    const dir = tempDir(t, 'distkit-ssh-');
    const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
    const log = path.join(dir, 'distccd.log');
    const tmp = path.join(dir, 'tmp');
    await fs.mkdir(tmp);
    // ssh <host> distccd --inetd: the "ssh" runs our distccd locally on the same two pipes.
    const ssh = path.join(dir, 'fake-ssh');
    await fs.writeFile(ssh, `#!/bin/sh\nTMPDIR='${tmp}' RUNTIME_DIRECTORY='${dir}' exec '${process.execPath}' '${DISTCCD}' --inetd --no-cache --compiler-dir '${masq}' --log-file '${log}' --log-level debug ${KEEP_ROOT.join(' ')}\n`, { mode: 0o755 });
    await fs.writeFile(path.join(dir, 't.c'), '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n');
    const env = clientEnv(dir, `@localhost/4${suffix}`, { DISTCC_SSH: ssh });
    for (const out of ['a.o', 'b.o']) {
      const r = await run('distcc', ['gcc', '-g', '-c', 't.c', '-o', out], { cwd: dir, env });
      assert.equal(r.code, 0, r.stderr);
    }
    const local = await run('gcc', ['-g', '-c', 't.c', '-o', 'local.o'], { cwd: dir });
    assert.equal(local.code, 0, local.stderr);
    assert.deepEqual(await fs.readFile(path.join(dir, 'a.o')), await fs.readFile(path.join(dir, 'local.o')));
    const text = await fs.readFile(log, 'utf8');
    assert.match(text, /mode kind=inetd why=".*(pipe|ssh)/);
    assert.equal(text.match(/client: pipe COMPILE_OK exit:0 sig:0 core:0 ret:0 time:\d+ms x86_64-linux-gnu-gcc t\.c/g)?.length, 2);
    assert.deepEqual(await settledListing(tmp), []);
  });
}

/** Runs distccd with one accepted TCP connection as its fd 0 and 1, as inetd nowait does. */
async function inetdOnce(t: Parameters<typeof tempDir>[0], args: string[], request: Buffer): Promise<{ answer: RawAnswer; code: number | null; log: string }> {
  const dir = tempDir(t, 'distkit-inetd-');
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  const logFile = path.join(dir, 'distccd.log');
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const exited = new Promise<number | null>((resolve) => {
    server.once('connection', (socket) => {
      // Its own runtime directory and no object cache: as root their defaults are the host's
      // /run/distccd and /var/cache/distccd, which a test must not leave behind.
      const cache = args.some((a) => a.startsWith('--cache') || a === '--no-cache') ? [] : ['--no-cache'];
      const child = spawn(process.execPath, [DISTCCD, '--compiler-dir', masq, '--log-file', logFile, '--log-level', 'debug', ...KEEP_ROOT, ...cache, ...args], {
        stdio: [socket, socket, 'ignore'],
        env: { ...process.env, RUNTIME_DIRECTORY: dir },
      });
      socket.destroy(); // the child holds its own copies, as after inetd's fork
      child.once('exit', (code) => resolve(code));
    });
  });
  const answer = await sendRaw((server.address() as net.AddressInfo).port, request);
  const code = await exited;
  return { answer, code, log: await fs.readFile(logFile, 'utf8') };
}

test('distccd serves a connected socket on stdin without --allow and detects inetd mode itself', async (t) => {
  const { answer, code, log } = await inetdOnce(t, [], encodeRequest(2, ['gcc', '-c', 't.c', '-o', 't.o'], SOURCE));
  assert.equal(answer.kind, 'answer');
  assert.equal(answer.kind === 'answer' && answer.response.status, 0);
  assert.equal(code, 0);
  assert.match(log, /mode kind=inetd why="stdin is a connected socket"/);
  assert.match(log, /client: 127\.0\.0\.1:\d+ COMPILE_OK /);
});

test('distccd --inetd exits 113 without a reply when the peer is not in --allow', async (t) => {
  const { answer, code, log } = await inetdOnce(t, ['--inetd', '--allow', '10.0.0.0/8'], encodeRequest(1, ['gcc', '-c', 't.c', '-o', 't.o'], SOURCE));
  assert.deepEqual(answer, { kind: 'closed', bytes: Buffer.alloc(0) });
  assert.equal(code, 113);
  assert.match(log, /connection from client '127\.0\.0\.1:\d+' denied by access list/);
});
