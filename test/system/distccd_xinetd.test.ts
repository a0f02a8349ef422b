// Our xinetd entry (inetd/xinetd.d/distcc, as install renders it) under the real xinetd: xinetd
// accepts, starts the distccd launcher with the entry's server_args on the connection, and the
// real distcc client compiles through it. xinetd conflicts with openbsd-inetd (which the other
// tests use), so it is not installed: Debian's package is downloaded and unpacked into the test's
// own directory, and runs there with a private configuration (a free loopback port, its own pid
// and log files). Nothing of the machine's /etc is read or changed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { clientEnv, makeMasqueradeDir, run, tempDir } from '../support/distccd_harness';
import { onFreePort, PORT_TAKEN } from '../support/free_port';
import { listensOn, read, start } from './echo_harness';
import { waitUntil } from '../support/wait_until';
import { renderTemplate } from '../support/render_template';

const root = path.resolve(__dirname, '../../..');
const SOURCE = '#include <stdio.h>\nint main(void) { puts("xinetd"); return 0; }\n';

/** Debian's xinetd, unpacked (not installed) under `dir`; its binary's path. */
async function unpackXinetd(dir: string): Promise<string> {
  const debs = path.join(dir, 'debs');
  await fs.mkdir(debs);
  const fetch = (): ReturnType<typeof spawnSync> => spawnSync('apt-get', ['download', 'xinetd'], { cwd: debs, encoding: 'utf8', timeout: 120_000 });
  let download = fetch();
  if (download.status !== 0) {
    // A fresh machine may have no package lists yet.
    spawnSync('apt-get', ['update', '-q'], { encoding: 'utf8', timeout: 300_000 });
    download = fetch();
  }
  const deb = (await fs.readdir(debs)).find((f) => f.endsWith('.deb'));
  assert.ok(deb !== undefined, `apt-get download xinetd failed (needs Debian's apt and its network): ${String(download.stderr)}`);
  const unpacked = path.join(dir, 'xinetd-root');
  const x = spawnSync('dpkg-deb', ['-x', path.join(debs, deb), unpacked], { encoding: 'utf8' });
  assert.equal(x.status, 0, x.stderr);
  return path.join(unpacked, 'usr/sbin/xinetd');
}

test('our xinetd.d entry runs the distccd launcher per connection and the real client compiles through it', { skip: process.getuid?.() !== 0 && 'xinetd starts distccd as root (see below): run as root' }, async (t) => {
  const dir = tempDir(t, 'distkit-xinetd-');
  await fs.chmod(dir, 0o755); // distccd drops to its own user and must still reach masq and the log
  const xinetd = await unpackXinetd(dir);

  // The install layout: PREFIX/sbin/distccd (the launcher) and PREFIX/lib/distkit/dist (ours).
  const prefix = path.join(dir, 'prefix');
  await fs.mkdir(path.join(prefix, 'sbin'), { recursive: true });
  await fs.mkdir(path.join(prefix, 'lib/distkit'), { recursive: true });
  await fs.symlink(path.join(root, 'dist'), path.join(prefix, 'lib/distkit/dist'));
  const masq = await makeMasqueradeDir(path.join(dir, 'masq'));
  const env = { PREFIX: prefix, NODE: process.execPath, COMPILER_DIR: masq };
  renderTemplate('scripts/launcher/distccd', path.join(prefix, 'sbin/distccd'), env, '0755');
  const services = path.join(dir, 'xinetd.d');
  await fs.mkdir(services);
  const entry = path.join(services, 'distcc');
  renderTemplate('inetd/xinetd.d/distcc', entry, env);

  // What an admin changes (disable = no), plus what this test needs: its own port (so UNLISTED),
  // loopback only, and a log file. `user = root` instead of the entry's distccd: this tree lives
  // in the build directory, which the distccd user may not be able to read (a 0700 checkout);
  // started as root without --user, distccd drops to distccd itself, which the log must show.
  const log = path.join(dir, 'distccd.log');
  await fs.writeFile(log, '', { mode: 0o666 });
  await fs.chmod(log, 0o666);
  const shipped = await fs.readFile(entry, 'utf8');
  assert.match(shipped, /^\s*server\s*=\s*\S+\/sbin\/distccd$/m);
  assert.match(shipped, /^\s*wait\s*=\s*no$/m);
  const conf = path.join(dir, 'xinetd.conf');
  await fs.writeFile(conf, `defaults\n{\n\tlog_type\t= FILE ${path.join(dir, 'xinetd.log')}\n}\nincludedir ${services}\n`);
  // xinetd must be told its port: started again on a fresh one if a parallel test took it.
  const port = await onFreePort(async (port) => {
    const edited = shipped
      .replace(/^(\s*disable\s*=).*$/m, '$1 no')
      .replace(/^(\s*user\s*=).*$/m, '$1 root')
      // No object cache and a runtime directory of the test's: as root their defaults are the
      // host's /var/cache/distccd and /run/distccd, which a test must not leave behind.
      .replace(/^(\s*server_args\s*=.*)$/m, `$1 --log-file ${log} --no-cache\n\tenv\t\t= RUNTIME_DIRECTORY=${dir}`)
      .replace(/^(\s*protocol\s*=.*)$/m, `$1\n\ttype\t\t= UNLISTED\n\tport\t\t= ${port}\n\tbind\t\t= 127.0.0.1`);
    await fs.writeFile(entry, edited);
    const daemon = start(t, xinetd, ['-dontfork', '-pidfile', path.join(dir, 'xinetd.pid'), '-f', conf]);
    const mine = await listensOn(daemon.child.pid!, [port], () => `xinetd is not listening on ${port}: ${daemon.output()}\n${read(path.join(dir, 'xinetd.log'))}`);
    if (mine) return port;
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    return PORT_TAKEN;
  });

  await fs.writeFile(path.join(dir, 't.c'), SOURCE);
  const local = await run('gcc', ['-g', '-c', 't.c', '-o', 'local.o'], { cwd: dir });
  assert.equal(local.code, 0, local.stderr);
  for (const [hosts, out] of [[`127.0.0.1:${port}/2`, 'p1.o'], [`127.0.0.1:${port}/2,lzo`, 'p2.o']] as const) {
    const r = await run('distcc', ['gcc', '-g', '-c', 't.c', '-o', out], { cwd: dir, env: clientEnv(dir, hosts) });
    assert.equal(r.code, 0, `${hosts}: ${r.stderr}\n${await fs.readFile(log, 'utf8')}`);
    assert.deepEqual(await fs.readFile(path.join(dir, out)), await fs.readFile(path.join(dir, 'local.o')));
  }
  // The summary line follows the answer (after the temp files are gone): wait for both.
  const text = await waitUntil(() => {
    const now = read(log);
    return (now.match(/client: 127\.0\.0\.1:\d+ COMPILE_OK exit:0 /g)?.length ?? 0) >= 2 ? now : undefined;
  }, 10_000, () => read(log));
  assert.equal(text.match(/client: 127\.0\.0\.1:\d+ COMPILE_OK exit:0 /g)?.length, 2, text);
  // One distccd per connection: each one on the socket
  // xinetd handed it, dropped to distccd, and started from the startup snapshot.
  const starts = text.match(/mode kind=inetd why="stdin is a connected socket"/g)?.length ?? 0;
  assert.ok(starts >= 2, text);
  assert.equal(text.match(/privileges dropped user=distccd /g)?.length, starts, text);
  assert.equal(text.match(/ ready .* start=snapshot/g)?.length, starts, text);
});
