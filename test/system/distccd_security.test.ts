// Attacks on the real distccd that the other system tests do not already make (see the distcc
// table in docs/reliability.md for the ones proven elsewhere): CVE-2004-2687-class command
// lines (shell metacharacters in argv[0], -specs, an @file outside the job, output and dependency
// paths outside the temp root), an empty DISTCC_CMDLIST, IPv4-mapped IPv6 peers on a :: listener
// against IPv4 and IPv6 rules, and the privilege drop of --user (uid, gid, supplementary groups of
// the daemon and of the compilers it runs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { makeMasqueradeDir, startDistccd, tempDir } from '../support/distccd_harness';
import { encodeRequest, sendRaw, type RawAnswer } from '../support/raw_distcc_client';
import { REQUEST_P1 } from '../support/distcc_golden';
import { settledListing } from '../support/settled_listing';

const SOURCE = 'int f(int x){return x+1;}\n';

function status(a: RawAnswer): number {
  assert.ok(a.kind === 'answer', `expected an answer, got ${a.kind}`);
  return a.response.status;
}

test('distccd refuses shell metacharacters, -specs, outside @files and outside -MF and never runs or writes what they name', async (t) => {
  const root = tempDir(t, 'distkit-cve-');
  const masq = await makeMasqueradeDir(path.join(root, 'masq'));
  const tmp = path.join(root, 'tmp');
  await fs.mkdir(tmp);
  const marker = path.join(root, 'pwned');
  const atFile = path.join(root, 'opts');
  await fs.writeFile(atFile, `-o ${marker}\n`);
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp } });
  const cases: Array<[string[], RegExp]> = [
    [[`gcc;touch ${marker}`, '-c', 't.c', '-o', 't.o'], /compiler .* must be a bare name|is not an executable entry/],
    [[`$(touch ${marker})`, '-c', 't.c', '-o', 't.o'], /compiler .* must be a bare name|is not an executable entry/],
    [['`id`', '-c', 't.c', '-o', 't.o'], /is not an executable entry/],
    [['gcc', `-specs=${atFile}`, '-c', 't.c', '-o', 't.o'], /loads a specs file/],
    [['gcc', `@${atFile}`, '-c', 't.c', '-o', 't.o'], /@/],
    [['gcc', '-MD', '-MF', marker, '-c', 't.c', '-o', 't.o'], /-MF/],
    [['gcc', `-aux-info`, marker, '-c', 't.c', '-o', 't.o'], /-aux-info/],
  ];
  for (const [argv, why] of cases) {
    const a = await sendRaw(d.port, encodeRequest(1, argv, SOURCE));
    assert.equal(status(a), 101 << 8, argv.join(' '));
    assert.ok(a.kind === 'answer');
    assert.match(a.response.stderr.toString(), why);
  }
  // An absolute -o is rewritten to a temp file: the object comes back, nothing is written there.
  const outside = await sendRaw(d.port, encodeRequest(1, ['gcc', '-c', 't.c', '-o', marker], SOURCE));
  assert.equal(status(outside), 0);
  await assert.rejects(fs.access(marker), /ENOENT/);
  assert.deepEqual(await settledListing(tmp), []);
});

test('distccd refuses every job while DISTCC_CMDLIST is empty', async (t) => {
  const root = tempDir(t, 'distkit-emptylist-');
  const masq = await makeMasqueradeDir(path.join(root, 'masq'));
  const list = path.join(root, 'cmdlist');
  await fs.writeFile(list, '');
  const d = await startDistccd(t, { compilerDir: masq, env: { DISTCC_CMDLIST: list } });
  const a = await sendRaw(d.port, REQUEST_P1);
  assert.equal(status(a), 101 << 8);
  await d.waitFor(/job refused /);
});

/** Connects from `host` and reports whether the server answered a compile. */
function compileFrom(host: string, port: number): Promise<'answered' | 'closed'> {
  return new Promise((resolve) => {
    let got = 0;
    const s = net.connect({ host, port }, () => s.write(REQUEST_P1));
    s.on('data', (b: Buffer) => (got += b.length));
    s.on('error', () => undefined);
    s.on('close', () => resolve(got > 0 ? 'answered' : 'closed'));
  });
}

for (const [rule, v4, v6] of [['127.0.0.1', 'answered', 'closed'], ['::1', 'closed', 'answered']] as const) {
  test(`distccd listening on :: with --allow ${rule} serves ${v4 === 'answered' ? '127.0.0.1 (IPv4-mapped) and denies ::1' : '::1 and denies 127.0.0.1 (IPv4-mapped)'} when connected from both`, async (t) => {
    const masq = await makeMasqueradeDir(path.join(tempDir(t, 'distkit-mapped-'), 'masq'));
    const d = await startDistccd(t, { compilerDir: masq, listen: '::', noAllow: true, args: ['--allow', rule] });
    assert.equal(await compileFrom('127.0.0.1', d.port), v4);
    assert.equal(await compileFrom('::1', d.port), v6);
    await d.waitFor(rule === '::1' ? /connection from client '\[::ffff:127\.0\.0\.1\]:\d+' denied|connection from client '127\.0\.0\.1:\d+' denied/ : /connection from client '\[::1\]:\d+' denied by access list/);
  });
}

function idsOf(statusText: string): { uid: string; gid: string; groups: string } {
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(statusText)![1]!.trim();
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
}

test('distccd --user nobody drops uid, gid and supplementary groups for itself and its compilers', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root');
    return;
  }
  const root = tempDir(t, 'distkit-user-');
  await fs.chmod(root, 0o755);
  const tmp = path.join(root, 'tmp');
  await fs.mkdir(tmp, { mode: 0o1777 });
  await fs.chmod(tmp, 0o1777);
  const bin = path.join(root, 'bin');
  await fs.mkdir(bin, { mode: 0o755 });
  await fs.writeFile(path.join(bin, 'idcc'), '#!/bin/sh\ngrep -E "^(Uid|Gid|Groups):" /proc/self/status >&2\nexit 1\n', { mode: 0o755 });
  const masq = await makeMasqueradeDir(path.join(root, 'masq'), ['idcc']);
  const d = await startDistccd(t, { compilerDir: masq, args: ['--user', 'nobody'], env: { TMPDIR: tmp, DISTCCD_PATH: `${bin}:/usr/bin:/bin` } });
  const a = await sendRaw(d.port, encodeRequest(1, ['idcc', '-c', 't.c', '-o', 't.o'], SOURCE));
  assert.equal(status(a), 1 << 8);
  assert.ok(a.kind === 'answer');
  // Real, effective, saved and fs ids all nobody; supplementary groups are nobody's own (initgroups:
  // nogroup), never root's 0.
  const nobody = { uid: '65534\t65534\t65534\t65534', gid: '65534\t65534\t65534\t65534', groups: '65534' };
  assert.deepEqual(idsOf(a.response.stderr.toString()), nobody, 'the compiler kept privileges');
  assert.deepEqual(idsOf(await fs.readFile(`/proc/${d.child.pid}/status`, 'utf8')), nobody, 'the daemon kept privileges');
});
