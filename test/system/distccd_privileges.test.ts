// Started by root, C distccd never keeps root (dcc_discard_root): it becomes --user, else the
// distcc account, else nobody. Ours does the same (with distccd, the account Debian's package
// and ours make, tried first), says so in the log, and checks TMPDIR as the user it became.
// Only `--user root` keeps root, with a warning. Needs root.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as posix from 'posix';
import { jobTree, runDistccd, startDistccd } from '../support/distccd_harness';
import { encodeRequest, sendRaw } from '../support/raw_distcc_client';

const isRoot = process.getuid?.() === 0;

/** The account a root start without --user must become: the first of distccd, distcc, nobody. */
function expectedAccount(): { name: string; uid: number } {
  for (const name of ['distccd', 'distcc', 'nobody']) {
    try {
      const pw = posix.getpwnam(name);
      return { name: pw.name, uid: pw.uid };
    } catch {
      // not here
    }
  }
  throw new Error('no distccd, distcc or nobody account on this machine');
}

/** A tree the dropped user can read, with a TMPDIR it can write (sticky, as /tmp). */
async function openTree(t: Parameters<typeof jobTree>[0]): Promise<{ masq: string; tmp: string; root: string }> {
  const tree = await jobTree(t, 'distkit-drop-');
  await fs.chmod(tree.root, 0o755);
  await fs.chmod(tree.tmp, 0o1777);
  return tree;
}

test('distccd started by root without --user becomes distccd, distcc or nobody and compiles as that user', { skip: !isRoot && 'needs root' }, async (t) => {
  const { masq, tmp } = await openTree(t);
  const account = expectedAccount();
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp }, keepRoot: false });
  await d.waitFor(new RegExp(`privileges dropped .*user=${account.name} uid=${account.uid}`));
  const status = await fs.readFile(`/proc/${d.child.pid}/status`, 'utf8');
  const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status);
  assert.deepEqual(uids?.slice(1).map(Number), [account.uid, account.uid, account.uid, account.uid], 'real, effective, saved and fs uid');
  assert.match(status, /^Groups:[ \t]*$/m, 'no supplementary group, as after C distccd\'s setgroups(0)');
  // Protocol 2: everything a job needs is loaded before the drop. The code tree may be one the
  // account cannot read (a 0700 checkout): an addon required on first use, after the drop, failed.
  const a = await sendRaw(d.port, encodeRequest(2, ['gcc', '-c', 't.c', '-o', 't.o'], 'int f(void){return 1;}\n'));
  assert.ok(a.kind === 'answer' && a.response.status === 0 && a.response.object.length > 0);
  assert.ok(!d.lines.some((l) => /running as root/.test(l)));
});

test('distccd --user root stays root and says what that means', { skip: !isRoot && 'needs root' }, async (t) => {
  const { masq, tmp } = await openTree(t);
  const d = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: tmp }, keepRoot: false, args: ['--user', 'root'] });
  await d.waitFor(/warning: running as root \(--user root\): compilers run as root for every allowed client/);
});

test('distccd started by root refuses to start when the user it becomes cannot write TMPDIR', { skip: !isRoot && 'needs root' }, async (t) => {
  const { masq, root } = await openTree(t);
  const closed = path.join(root, 'closed');
  await fs.mkdir(closed, { mode: 0o700 }); // root's alone
  const { code, stderr } = await runDistccd(['--daemon', '--no-detach', '--listen', '127.0.0.1', '-p', '0', '--allow', '127.0.0.1',
    '--no-cache', '--compiler-dir', masq, '--log-stderr'], { env: { TMPDIR: closed } });
  assert.equal(code, 101);
  assert.match(stderr, new RegExp(`TMPDIR ${closed} is not a writable directory \\(EACCES\\)`));
});
