import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { DistccStats, renderStatsPage, createStatsHandler, samplePointsIn } from '../../src/compile/stats';
import { createHostReader, parseProcStat, type HostReadings } from '../../src/compile/host_load';
import type { Connection } from '../../src/activation/connection';

const C_PAGE = fs.readFileSync(path.join(__dirname, '../../../test/fixtures/compile/c_distccd_stats_page.txt'), 'latin1');

const HOST: HostReadings = {
  loadavg: [1.5, 0.625, 0], currentLoad: 2, procstateD: 0, maxRss: 42956, maxRssName: '(node)', ioRate: -1, freeSpaceMb: 81118, freeMemMb: 22523,
};

function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

test('renderStatsPage prints the exact bytes distccd prints when nothing ran yet', () => {
  const stats = new DistccStats({ maxKids: 4, now: clock().now });
  const page = renderStatsPage(stats.snapshot(), HOST);
  const want = 'HTTP/1.0 200 OK\nContent-Type: text/plain\nConnection: close\n\nargv /distccd\n<distccstats>\n'
    + 'dcc_tcp_accept 0\ndcc_rej_bad_req 0\ndcc_rej_overload 0\ndcc_compile_ok 0\ndcc_compile_error 0\ndcc_compile_timeout 0\n'
    + 'dcc_cli_disconnect 0\ndcc_other 0\ndcc_longest_job none\ndcc_longest_job_compiler none\ndcc_longest_job_time_msecs -1\n'
    + 'dcc_max_kids 4\ndcc_avg_kids1 0\ndcc_avg_kids2 0\ndcc_avg_kids3 0\ndcc_current_load 2\ndcc_load1 1.50\ndcc_load2 0.63\n'
    + 'dcc_load3 0.00\ndcc_num_compiles1 0\ndcc_num_compiles2 0\ndcc_num_compiles3 0\ndcc_num_procstate_D 0\ndcc_max_RSS 42956\n'
    + 'dcc_max_RSS_name (node)\ndcc_io_rate -1\ndcc_free_space 81118 MB\ndcc_free_mem 22523 MB\n</distccstats>\n';
  assert.equal(page, want);
});

test('renderStatsPage matches the C distccd capture line by line when the only addition is dcc_free_mem', () => {
  const ours = renderStatsPage(new DistccStats({ maxKids: 4 }).snapshot(), HOST).split('\n');
  const theirs = C_PAGE.split('\n');
  const withoutFreeMem = ours.filter((l) => !l.startsWith('dcc_free_mem '));
  assert.equal(withoutFreeMem.length, theirs.length);
  const shape = (line: string): string => line
    .replace(/ -?\d+\.\d\d$/, ' F')
    .replace(/ -?\d+ MB$/, ' MB')
    .replace(/ -?\d+$/, ' N')
    .replace(/^(dcc_max_RSS_name|dcc_longest_job|dcc_longest_job_compiler) .*$/, '$1 S');
  assert.deepEqual(withoutFreeMem.map(shape), theirs.map(shape));
  assert.ok(!C_PAGE.includes('\r'));
});

test('DistccStats counts each result and keeps the longest successful job when jobs finish', () => {
  const c = clock();
  const stats = new DistccStats({ maxKids: 3, now: c.now });
  stats.record('TCP_ACCEPT');
  stats.record('TCP_ACCEPT');
  stats.record('COMPILE_OK', { compiler: 'x86_64-linux-gnu-gcc', file: 't.c', startMs: c.now() - 55, stopMs: c.now() });
  stats.record('COMPILE_OK', { compiler: 'gcc', file: 'quick.c', startMs: c.now() - 5, stopMs: c.now() });
  stats.record('COMPILE_ERROR');
  stats.record('REJ_BAD_REQ');
  stats.record('CLI_DISCONN');
  stats.record('OTHER');
  const s = stats.snapshot();
  assert.deepEqual(s.counters, { TCP_ACCEPT: 2, REJ_BAD_REQ: 1, REJ_OVERLOAD: 0, COMPILE_OK: 2, COMPILE_ERROR: 1, COMPILE_TIMEOUT: 0, CLI_DISCONN: 1, OTHER: 1 });
  assert.equal(s.longestJob, 't.c');
  assert.equal(s.longestJobCompiler, 'x86_64-linux-gnu-gcc');
  assert.equal(s.longestJobMs, 55);
  assert.deepEqual(s.numCompiles, [4, 4, 4]);
});

test('DistccStats ages compiles out of the 1, 5 and 15 minute windows when time passes', () => {
  const c = clock();
  const stats = new DistccStats({ maxKids: 1, now: c.now });
  stats.record('COMPILE_ERROR');
  c.advance(2 * 60_000);
  stats.record('COMPILE_TIMEOUT');
  stats.record('REJ_OVERLOAD'); // not a compile
  assert.deepEqual(stats.snapshot().numCompiles, [1, 2, 2]);
  c.advance(4 * 60_000);
  assert.deepEqual(stats.snapshot().numCompiles, [0, 1, 2]);
  c.advance(10 * 60_000); // 16 and 14 minutes after the two compiles
  assert.deepEqual(stats.snapshot().numCompiles, [0, 0, 1]);
  c.advance(2 * 60_000);
  assert.deepEqual(stats.snapshot().numCompiles, [0, 0, 0]);
});

test('DistccStats forgets expired compiles in batches without miscounting busy kids', () => {
  const c = clock();
  const stats = new DistccStats({ maxKids: 4, now: c.now });
  stats.snapshot();
  // 3000 one-second jobs, one every 20 ms (a busy farm): more than a batch of expired ones.
  for (let i = 0; i < 3000; i++) {
    c.advance(20);
    stats.record('COMPILE_OK', { compiler: 'gcc', file: 'f.c', startMs: c.now() - 1000, stopMs: c.now() });
  }
  c.advance(3 * 60_000); // every one of them is now older than two minutes
  const start = c.now();
  c.advance(60_000);
  for (let i = 0; i < 2; i++) stats.record('COMPILE_OK', { compiler: 'gcc', file: 'g.c', startMs: start, stopMs: c.now() });
  c.advance(60_000);
  assert.equal(stats.snapshot().avgKids[0], 2, 'only the two jobs that ran a minute ago count');
});

test('DistccStats averages busy kids a minute late when compiles overlap', () => {
  const c = clock();
  const stats = new DistccStats({ maxKids: 4, now: c.now });
  stats.snapshot(); // first sample at t0: nothing ran
  // Three jobs that each ran for the whole of the next minute.
  const start = c.now();
  c.advance(60_000);
  for (let i = 0; i < 3; i++) stats.record('COMPILE_OK', { compiler: 'gcc', file: `f${i}.c`, startMs: start, stopMs: c.now() });
  c.advance(60_000); // the sample at t0+120s looks at t0..t0+60s
  const s = stats.snapshot();
  assert.equal(s.avgKids[0], 3);
  assert.equal(s.avgKids[1], Math.floor((0 + 0 + 3) / 5));
  assert.equal(s.avgKids[2], 0);
  c.advance(60_000);
  assert.equal(stats.snapshot().avgKids[0], 0);
});

test('samplePointsIn counts the same points as testing each of the 60 when intervals fall anywhere', () => {
  const naive = (at: number, start: number, stop: number): number => {
    let n = 0;
    for (let t = 60; t < 120; t++) if (start <= at - t * 1000 && stop >= at - t * 1000) n++;
    return n;
  };
  // Offsets in whole seconds (ends right on a sample point) and in any ms, around the window.
  const offset = fc.oneof(fc.integer({ min: -200, max: 20 }).map((s) => s * 1000), fc.integer({ min: -200_000, max: 20_000 }), fc.double({ min: -200_000, max: 20_000, noNaN: true }));
  const at = fc.oneof(fc.integer({ min: 0, max: 2 ** 42 }), fc.double({ min: 0, max: 2 ** 42, noNaN: true }));
  fc.assert(fc.property(at, offset, offset, (now, a, b) => {
    const [start, stop] = [now + Math.min(a, b), now + Math.max(a, b)];
    assert.equal(samplePointsIn(now, start, stop), naive(now, start, stop));
    assert.equal(samplePointsIn(now, stop, start), naive(now, stop, start), 'an interval that ends before it starts covers nothing');
  }), { numRuns: 20_000 });
});

test('renderStatsPage keeps one field per line when a file name holds a newline', () => {
  const c = clock();
  const stats = new DistccStats({ maxKids: 1, now: c.now });
  stats.record('COMPILE_OK', { compiler: 'gcc', file: 'x.c\ndcc_compile_ok 999', startMs: c.now() - 10, stopMs: c.now() });
  const page = renderStatsPage(stats.snapshot(), HOST);
  assert.match(page, /^dcc_longest_job x\.c\?dcc_compile_ok 999$/m);
  assert.equal(page.match(/^dcc_compile_ok /gm)?.length, 1);
});

test('createHostReader reads plausible values when it runs on the real /proc', async () => {
  const h = await createHostReader({ tmpDir: os.tmpdir() })();
  assert.ok(h.loadavg.every((l) => l >= 0));
  assert.ok(h.currentLoad >= 1, 'this test itself is running');
  assert.ok(h.maxRss > 0);
  assert.match(h.maxRssName, /^\(.*\)$/);
  assert.ok(h.freeSpaceMb >= 0);
  assert.ok(h.freeMemMb > 0);
  assert.equal(h.ioRate, -1, 'first reading has no rate yet');
});

test('createHostReader parses a recorded /proc tree when given its root', async (t: TestContext) => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'distkit-proc-'));
  t.after(() => fsp.rm(root, { recursive: true, force: true }));
  await fsp.writeFile(path.join(root, 'loadavg'), '0.50 0.25 0.125 3/120 999\n');
  await fsp.writeFile(path.join(root, 'meminfo'), 'MemTotal: 100 kB\nMemAvailable:    2097152 kB\n');
  const disk = (r: number, w: number): string => `   8       0 sda 1 0 ${r} 0 2 0 ${w} 0 0 0 0\n   8       1 sda1 1 0 ${r} 0 2 0 ${w} 0 0 0 0\n 7 0 loop0 0 0 5 0 0 0 5 0 0 0 0\n`;
  await fsp.writeFile(path.join(root, 'diskstats'), disk(100, 50));
  const proc = async (pid: number, name: string, state: string, rssPages: number): Promise<void> => {
    await fsp.mkdir(path.join(root, String(pid)));
    const fields = [state, ...Array.from({ length: 20 }, () => '0'), String(rssPages), '0'];
    await fsp.writeFile(path.join(root, String(pid), 'stat'), `${pid} (${name}) ${fields.join(' ')}\n`);
  };
  await proc(1, 'init', 'S', 100);
  await proc(2, 'cc1', 'D', 9000);
  await proc(3, 'my prog)', 'D', 500);
  await proc(4, 'x86_64-linux-gnu-g++', 'R', 8000);
  const c = clock();
  const read = createHostReader({ procRoot: root, tmpDir: root, now: c.now });
  const first = await read();
  assert.deepEqual(first.loadavg, [0.5, 0.25, 0.125]);
  assert.equal(first.currentLoad, 3);
  assert.equal(first.procstateD, 2);
  assert.equal(first.maxRss, 9000 * 4);
  assert.equal(first.maxRssName, '(cc1)', 'cc1 ends in "1", not "cc"');
  assert.equal(first.freeMemMb, 2048);
  assert.equal(first.ioRate, -1);
  await fsp.writeFile(path.join(root, 'diskstats'), disk(400, 150));
  c.advance(10_000);
  assert.equal((await read()).ioRate, (300 + 100) / 10);
  assert.deepEqual(parseProcStat('5 (a) b) R 0', 4), undefined);
});

function connectionOf(socket: net.Socket, id: number): Connection {
  return { stream: socket, peer: { kind: 'tcp', address: socket.remoteAddress!, port: socket.remotePort!, family: socket.remoteFamily === 'IPv6' ? 'IPv6' : 'IPv4' }, id, listener: 'stats' };
}

async function fetchRaw(port: number, request: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => { if (request !== '') s.write(request); });
    s.on('data', (d) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

test('createStatsHandler answers the page when a client sends any request or none', async (t) => {
  const stats = new DistccStats({ maxKids: 2 });
  stats.record('TCP_ACCEPT');
  const handler = createStatsHandler(stats, { readHost: async () => HOST, drainMs: 1000, access: { allows: (a) => a === '127.0.0.1' } });
  let id = 0;
  const done: Promise<unknown>[] = [];
  const server = net.createServer((socket) => { done.push(handler(connectionOf(socket, ++id)).finally(() => socket.destroy())); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as net.AddressInfo).port;
  const page = await fetchRaw(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(page, renderStatsPage(stats.snapshot(), HOST));
  assert.match(page, /^dcc_tcp_accept 1$/m);
  assert.equal(await fetchRaw(port, ''), page);
  assert.equal(await fetchRaw(port, 'x'.repeat(100_000)), page);
  await Promise.all(done);
});

test('createStatsHandler closes without a reply when the peer is not allowed', async (t) => {
  const handler = createStatsHandler(new DistccStats({ maxKids: 1 }), { readHost: async () => HOST, access: { allows: () => false } });
  const server = net.createServer((socket) => { void handler(connectionOf(socket, 1)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  assert.equal(await fetchRaw((server.address() as net.AddressInfo).port, 'GET / HTTP/1.0\r\n\r\n'), '');
});
