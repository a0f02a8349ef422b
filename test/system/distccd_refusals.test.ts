// Requests our distccd must refuse, each with the precise reason in the log, and the daemon still
// serving afterwards. Malformed requests come from a raw client on our codec: the real client
// never sends them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { clientEnv, DISTCCD, KEEP_ROOT, makeMasqueradeDir, run, runDistccd, startDistccd, tempDir, type RunningDistccd } from '../support/distccd_harness';
import { encodeRequest, sendRaw, type RawAnswer } from '../support/raw_distcc_client';
import { REQUEST_P1 } from '../support/distcc_golden';
import { encodeInteger, encodeBody } from '../../src/compile/wire/tokens';

const SOURCE = 'int f(int x) { return x + 1; }\n';
const GOOD = ['x86_64-linux-gnu-gcc', '-c', 't.c', '-o', 't.o'];

function answered(a: RawAnswer): NonNullable<Extract<RawAnswer, { kind: 'answer' }>['response']> {
  assert.equal(a.kind, 'answer', JSON.stringify(a));
  return (a as Extract<RawAnswer, { kind: 'answer' }>).response;
}

async function stillServes(d: RunningDistccd): Promise<void> {
  const r = answered(await sendRaw(d.port, encodeRequest(2, GOOD, SOURCE)));
  assert.equal(r.status, 0, r.stderr.toString());
  assert.ok(r.object.length > 0);
  assert.equal(d.child.exitCode, null);
}

test('distccd refuses to start as a daemon when neither --allow nor --allow-private is given', async () => {
  const { code, stderr } = await runDistccd(['--daemon', '--no-detach', '--listen', '127.0.0.1', '-p', '0', '--log-stderr']);
  assert.equal(code, 101);
  assert.match(stderr, /refuses to serve the whole network: give --allow IP\[\/BITS\]/);
});

test('distccd exits 101 on an unknown option and 102 when its port is taken', async (t) => {
  const runIt = async (args: string[]): Promise<{ code: unknown; stderr: string }> => {
    const child = spawn(process.execPath, [DISTCCD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    return { code: await new Promise((r) => child.once('exit', r)), stderr };
  };
  const bogus = await runIt(['--frobnicate']);
  assert.equal(bogus.code, 101);
  assert.match(bogus.stderr, /unknown option --frobnicate/);
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-bind-'), 'masq'));
  const d = await startDistccd(t, { compilerDir: masq });
  // --no-cache: run as root it would make the default /var/cache/distccd before its bind fails.
  const taken = await runIt(['--daemon', '--no-detach', '--listen', '127.0.0.1', '-p', String(d.port), '--allow', '127.0.0.1', '--compiler-dir', masq, '--log-stderr', '--no-cache']);
  assert.equal(taken.code, 102);
  assert.match(taken.stderr, new RegExp(`Cannot bind 127\\.0\\.0\\.1:${d.port}: address in use`));
});

test('distccd closes a denied peer without a reply and logs it when the access list excludes it', async (t) => {
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-deny-'), 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, noAllow: true, args: ['--allow', '10.0.0.0/8'] });
  for (let i = 0; i < 2; i++) {
    const a = await sendRaw(d.port, REQUEST_P1);
    assert.deepEqual(a, { kind: 'closed', bytes: Buffer.alloc(0) });
  }
  await d.waitFor(/connection from client '127\.0\.0\.1:\d+' denied by access list/);
  await d.waitForCount(/denied by access list/, 2);
  assert.equal(d.child.exitCode, null);
});

test('distccd drops malformed requests with the reason in the log and keeps serving', async (t) => {
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-bad-'), 'masq'));
  const d = await startDistccd(t, { compilerDir: masq });
  const cases: Array<[Buffer, RegExp]> = [
    [Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 0)]), /ARGC 0: the request has no command line/],
    [Buffer.from('HELO00000001'), /expected token DIST, got .*H/],
    [Buffer.concat([encodeInteger('DIST', 9), encodeInteger('ARGC', 1)]), /DIST 9: unsupported protocol version/],
    [Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 1), Buffer.from('ARGVzz')]), /bad hex digit in ARGV header/],
    [Buffer.concat([encodeInteger('DIST', 1), encodeInteger('ARGC', 1), ...encodeBody('ARGV', 'gcc'), Buffer.from('DOTIffffffff')]), /DOTI length 4294967295 exceeds the limit/],
  ];
  for (const [bytes, why] of cases) {
    // The refusal comes without waiting for more bytes: the raw client never closes first.
    const a = await sendRaw(d.port, bytes, { timeoutMs: 10_000 });
    assert.deepEqual(a, { kind: 'closed', bytes: Buffer.alloc(0) });
    await d.waitFor(new RegExp(`job refused .*reason=.*${why.source}`));
  }
  await d.waitForCount(/ REJ_BAD_REQ exit:0 sig:0 core:0 ret:109 /, cases.length);
  await stillServes(d);
});

test('distccd answers a failing STAT with the reason in SERR when the compiler or its arguments are not allowed', async (t) => {
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-policy-'), 'masq'));
  const d = await startDistccd(t, { compilerDir: masq });
  const cases: Array<[string[], RegExp]> = [
    [['/usr/local/bin/gcc', '-c', 't.c', '-o', 't.o'], /compiler \/usr\/local\/bin\/gcc must be a bare name/],
    [['tcc', '-c', 't.c', '-o', 't.o'], /compiler tcc is not an executable entry of /],
    [['gcc', '-fplugin=/tmp/evil.so', '-c', 't.c', '-o', 't.o'], /-fplugin=/],
    [['gcc', '-E', 't.c'], /-E asks for preprocessing only/],
  ];
  for (const [argv, why] of cases) {
    for (const version of [1, 2]) {
      const r = answered(await sendRaw(d.port, encodeRequest(version, argv, SOURCE)));
      assert.equal(r.status, 101 << 8);
      assert.equal(r.version, version);
      assert.match(r.stderr.toString(), new RegExp(`^distccd\\[${d.child.pid}\\] ERROR: .*${why.source}`));
      assert.equal(r.object.length, 0);
    }
    await d.waitFor(new RegExp(`job refused .*${why.source}`));
  }
  // /usr/bin/ is stripped: the masquerade entry gcc allows it.
  const stripped = answered(await sendRaw(d.port, encodeRequest(1, ['/usr/bin/gcc', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(stripped.status, 0, stripped.stderr.toString());
  await stillServes(d);
});

test('distccd refuses every job while DISTCC_CMDLIST cannot be read and serves listed compilers when it can', async (t) => {
  const dir = tempDir(t, 'distkit-cmdlist-');
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  const list = path.join(dir, 'cmdlist');
  const d = await startDistccd(t, { compilerDir: masq, env: { DISTCC_CMDLIST: list } });
  const refused = answered(await sendRaw(d.port, encodeRequest(1, GOOD, SOURCE)));
  assert.equal(refused.status, 101 << 8);
  assert.match(refused.stderr.toString(), /Cannot read DISTCC_CMDLIST file .*cmdlist \(ENOENT\)/);
  await d.waitFor(/job refused .*Cannot read DISTCC_CMDLIST/);
  await fs.writeFile(list, '/usr/bin/x86_64-linux-gnu-gcc\n');
  const listed = answered(await sendRaw(d.port, encodeRequest(1, GOOD, SOURCE)));
  assert.equal(listed.status, 0, listed.stderr.toString());
  const unlisted = answered(await sendRaw(d.port, encodeRequest(1, ['g++', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.match(unlisted.stderr.toString(), /compiler g\+\+ is not in DISTCC_CMDLIST/);
});

test('distccd treats DIST 0 as protocol 1 and echoes it in DONE', async (t) => {
  const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-dist0-'), 'masq'));
  const d = await startDistccd(t, { compilerDir: masq });
  const r = answered(await sendRaw(d.port, encodeRequest(0, GOOD, SOURCE)));
  assert.equal(r.version, 0);
  assert.equal(r.status, 0);
  assert.ok(r.object.length > 0);
});

test('the real client shows the reason of a refused job to the user', async (t) => {
  const dir = tempDir(t, 'distkit-why-');
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  const d = await startDistccd(t, { compilerDir: masq, env: { DISTCC_CMDLIST: path.join(dir, 'missing-cmdlist') } });
  await fs.writeFile(path.join(dir, 't.c'), SOURCE);
  const r = await run('distcc', ['gcc', '-c', 't.c', '-o', 't.o'], { cwd: dir, env: clientEnv(dir, `127.0.0.1:${d.port}/4,lzo`) });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /distccd\[\d+\] ERROR: Cannot read DISTCC_CMDLIST file .*missing-cmdlist \(ENOENT\): every job is refused until it is readable/);
});

test('distccd refuses to start without its masquerade directory (exit 110) unless --enable-tcp-insecure, which runs any program', async (t) => {
  const dir = tempDir(t, 'distkit-insecure-');
  const { code, stderr } = await runDistccd(['--daemon', '--no-detach', '--listen', '127.0.0.1', '-p', '0', '--allow', '127.0.0.1',
    '--compiler-dir', path.join(dir, 'no-such-dir'), '--log-stderr', ...KEEP_ROOT]);
  assert.equal(code, 110);
  assert.match(stderr, /compiler directory .*no-such-dir does not exist/);
  // Insecure: the client names any program and it runs (this is CVE-2004-2687 by design).
  const d = await startDistccd(t, { compilerDir: path.join(dir, 'no-such-dir'), args: ['--enable-tcp-insecure'] });
  const r = answered(await sendRaw(d.port, encodeRequest(1, ['/bin/echo', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(r.status, 0);
  assert.match(r.stdout.toString(), /^-c \/\S+\/distccd_[0-9a-f]{12}\.i -o \/\S+\/distccd_[0-9a-f]{12}\.o\n$/);
  // The argument checks still hold in insecure mode.
  const plugin = answered(await sendRaw(d.port, encodeRequest(1, ['gcc', '-fplugin=/tmp/x.so', '-c', 't.c', '-o', 't.o'], SOURCE)));
  assert.equal(plugin.status, 101 << 8);
});
