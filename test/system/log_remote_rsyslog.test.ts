// --log-remote and -logremote for real: Debian's rsyslogd, with a private config (imudp and
// imtcp on loopback, its own pid file and work directory), receives distccd's log over TCP and
// dc_server's over UDP at facility daemon; it is stopped mid-test and started again, and TCP
// logging resumes by itself, with the lines it could not send counted in the metrics.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { clientEnv, makeMasqueradeDir, run, startDistccd, tempDir } from '../support/distccd_harness';
import { Daemon } from '../support/daemon';
import { freePort } from '../support/free_port';
import { metricsAddressIn, parseSamples, sample, scrape } from '../support/metrics_scrape';
import { waitUntil } from '../support/wait_until';
import { Program } from './cache_harness';

interface Collector {
  readonly udp: number;
  readonly tcp: number;
  lines(): string[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** rsyslogd in the foreground on loopback UDP and TCP ports; lines land in `dir`/out.log. */
async function privateCollector(t: TestContext, dir: string): Promise<Collector> {
  const [udp, tcp] = [await freePort(), await freePort()];
  const out = path.join(dir, 'out.log');
  const conf = path.join(dir, 'rsyslog.conf');
  fs.writeFileSync(conf, [
    `global(workDirectory="${dir}")`,
    'module(load="imudp")',
    'module(load="imtcp")',
    `input(type="imudp" address="127.0.0.1" port="${udp}")`,
    `input(type="imtcp" address="127.0.0.1" port="${tcp}")`,
    'template(name="probe" type="string" string="%inputname% %syslogfacility-text% %syslogseverity-text% %syslogtag%%msg%\\n")',
    `*.* action(type="omfile" file="${out}" template="probe")`,
    '',
  ].join('\n'));
  const lines = (): string[] => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter((l) => l !== '') : []);
  let daemon: Daemon | undefined;
  let probes = 0;
  const start = async (): Promise<void> => {
    daemon = Daemon.start(t, '/usr/sbin/rsyslogd', ['-n', '-f', conf, '-i', path.join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
    // Ready once a UDP probe comes out the other end (imudp is up; imtcp starts with it).
    const probe = dgram.createSocket('udp4');
    t.after(() => probe.close());
    const tag = `probe${++probes}`;
    await waitUntil(() => {
      probe.send(`<30>${tag}: ready`, udp, '127.0.0.1');
      return lines().some((l) => l.includes(`${tag}: ready`)) ? true : undefined;
    }, 15_000, () => `rsyslogd did not log a probe: ${daemon?.output}`);
  };
  await start();
  return {
    udp,
    tcp,
    lines,
    start,
    async stop() {
      await daemon?.stop('SIGTERM');
    },
  };
}

test('remote syslog receives distccd over TCP and dc_server over UDP, and TCP resumes after the collector restarts', async (t) => {
  const root = tempDir(t, 'distkit-logremote-', { mode: 0o755 });
  const collector = await privateCollector(t, root);
  const src = path.join(root, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'ok.c'), 'int ok(void) { return 1; }\n');
  const masq = await makeMasqueradeDir(path.join(root, 'masq'), ['gcc', 'x86_64-linux-gnu-gcc']);
  const distccd = await startDistccd(t, { compilerDir: masq, env: { TMPDIR: root }, args: ['--log-remote', `tcp:127.0.0.1:${collector.tcp}`, '--metrics-listen', '127.0.0.1:0'] });
  const metrics = metricsAddressIn(await distccd.waitFor(/metrics listening on=/))!;
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', '-logremote', `udp:127.0.0.1:${collector.udp}`]);
  t.after(() => server.stop());
  await server.listening();

  const dpid = distccd.child.pid!;
  const spid = server.pid;
  await waitUntil(() => (collector.lines().some((l) => l.startsWith(`imudp daemon notice dc_server[${spid}]: listening on=127.0.0.1:`)) ? true : undefined), 10_000, () => collector.lines().join('\n'));
  await waitUntil(() => (collector.lines().some((l) => l.startsWith(`imtcp daemon notice distccd[${dpid}]: ready jobs=`)) ? true : undefined), 10_000, () => collector.lines().join('\n'));
  // The local sink still gets every line (stderr here): remote is in addition.
  assert.match(distccd.lines.join('\n'), /notice: ready jobs=/);

  const env = clientEnv(path.join(root, 'home'), `127.0.0.1:${distccd.port}/4`);
  fs.mkdirSync(path.join(root, 'home'));
  const compile = async (i: number): Promise<void> => assert.equal((await run('distcc', ['gcc', '-c', 'ok.c', '-o', `ok${i}.o`], { cwd: src, env })).code, 0);
  const summaries = (): number => collector.lines().filter((l) => l.startsWith(`imtcp daemon notice distccd[${dpid}]: (dcc_job_summary) client: 127.0.0.1:`) && l.includes('COMPILE_OK')).length;
  await compile(0);
  await waitUntil(() => (summaries() === 1 ? true : undefined), 10_000, () => collector.lines().join('\n'));

  // The collector goes away: what distccd logs meanwhile cannot be sent, and is counted.
  await collector.stop();
  await compile(1);
  await distccd.waitForCount(/COMPILE_OK/, 2);
  const dropped = async (): Promise<number> => sample(parseSamples(await scrape(metrics)), 'distccd_log_lines_dropped_total')!;
  assert.ok((await dropped()) > 0, 'lines logged while the collector was down are counted as dropped');

  // Back on the same port: the next lines connect again and arrive.
  await collector.start();
  let i = 2;
  const before = summaries();
  while (summaries() === before && i < 12) {
    await compile(i++);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.ok(summaries() > before, `TCP logging resumed after the restart: ${collector.lines().slice(-5).join('\n')}`);
});
