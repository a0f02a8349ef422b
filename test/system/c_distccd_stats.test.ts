import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { DistccStats, renderStatsPage } from '../../src/compile/stats';
import { createHostReader } from '../../src/compile/host_load';
import { freePort } from '../support/free_port';

async function fetchPage(port: number, deadline: number): Promise<string> {
  for (;;) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.0\r\n\r\n'));
        s.on('data', (d) => chunks.push(d));
        s.once('error', reject);
        s.once('close', () => (chunks.length > 0 ? resolve(Buffer.concat(chunks).toString('latin1')) : reject(new Error('empty reply'))));
      });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Field names with each value reduced to its format class. */
function shape(page: string): string[] {
  return page.split('\n').map((line) => line
    .replace(/ -?\d+\.\d\d$/, ' F')
    .replace(/ -?\d+ MB$/, ' MB')
    .replace(/ -?\d+$/, ' N')
    .replace(/^(dcc_max_RSS_name|dcc_longest_job|dcc_longest_job_compiler) .*$/, '$1 S'));
}

test('renderStatsPage has the shape of the page Debian C distccd serves when both run on this host', async (t) => {
  const statsPort = await freePort();
  const port = await freePort();
  const child = spawn('/usr/bin/distccd', ['--stats', '--stats-port', String(statsPort), '--allow', '127.0.0.1', '--listen', '127.0.0.1',
    '--port', String(port), '--no-detach', '--daemon', '--log-stderr'], { stdio: 'ignore' });
  t.after(async () => {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
  });
  const theirs = await fetchPage(statsPort, Date.now() + 10_000);
  const ours = renderStatsPage(new DistccStats({ maxKids: 4 }).snapshot(), await createHostReader()());
  assert.deepEqual(shape(ours).filter((l) => !l.startsWith('dcc_free_mem ')), shape(theirs));
  assert.ok(theirs.startsWith('HTTP/1.0 200 OK\nContent-Type: text/plain\nConnection: close\n\nargv /distccd\n<distccstats>\n'));
});
