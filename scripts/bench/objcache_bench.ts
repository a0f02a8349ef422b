// `npm run bench -- objcache`: the object cache on a generated tree of C files (a few hundred
// lines each, system headers, -O2), built with make -j4 through the real distcc client in
// protocol 2 (`,lzo`) and through the pump client in protocol 3 (`,cpp,lzo`), side by side in one
// run against Debian's C distccd:
//   C cold            C distccd (it has no cache)
//   ours off          ours with --no-cache
//   ours cache cold   ours with an empty cache (what the cache costs a cold build)
//   ours warm         ours again after `make clean`, every object in the cache
// and the round trip of one hit (a raw protocol-2 request already cached, loopback), the most a
// hit can cost the server. Loopback only, free ports, every server stopped by PID, the work dir
// removed. The machine may be shared: the load average is printed with the table.
// Usage: node dist/scripts/bench/objcache_bench.js [--quick] [--files N]

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/support/free_port';
import { realPump, runPump } from '../../test/support/real_pump';
import { stopServer, waitForPort } from './bench_servers';

const exec = promisify(execFile);
const REPO = path.resolve(__dirname, '../../..');
const OURS = path.join(REPO, 'dist/src/cli/distccd.js');
const QUICK = process.argv.includes('--quick');
const FILES = (() => {
  const i = process.argv.indexOf('--files');
  return i >= 0 ? Number(process.argv[i + 1]) : QUICK ? 40 : 200;
})();
const HIT_JOBS = 50;

interface Server { readonly name: string; readonly port: number; readonly child: ChildProcess; readonly log: string }

async function startServer(name: string, work: string, extra: readonly string[]): Promise<Server> {
  const port = await freePort();
  const log = path.join(work, `${name}.log`);
  await fs.writeFile(log, '');
  await fs.chmod(log, 0o666); // run as root, both daemons drop to their account
  const args = ['--daemon', '--no-detach', '--listen', '127.0.0.1', '--port', String(port), '--allow', '127.0.0.1', '--jobs', '4', '--log-file', log];
  const [file, argv] = name === 'c' ? ['/usr/bin/distccd', args] : [process.execPath, [OURS, ...args, ...extra]];
  const child = spawn(file, argv, { stdio: 'ignore', env: { ...process.env, TMPDIR: path.join(work, 'tmp') } });
  await waitForPort(port, child, 15_000);
  return { name, port, child, log };
}

/** A C file of about 300 lines: system headers, loops, string and math work for -O2. */
function sourceOf(i: number): string {
  const lines = ['#include <stdio.h>', '#include <stdlib.h>', '#include <string.h>', '#include <math.h>', '#include <ctype.h>', ''];
  for (let f = 0; f < 24; f++) {
    lines.push(
      `static double calc_${i}_${f}(const double *v, size_t n) {`, '  double acc = 0.0;',
      '  for (size_t k = 0; k < n; k++) {', `    double x = v[k] * ${f + 1}.5 + ${i};`,
      '    if (x > 100.0) acc += sqrt(x); else acc -= sin(x) * cos(x);', '  }', '  return acc;', '}',
      `int text_${i}_${f}(char *out, size_t len, const char *in) {`, '  size_t n = strlen(in);',
      '  for (size_t k = 0; k < n && k + 1 < len; k++) out[k] = (char)toupper((unsigned char)in[k]);',
      `  return snprintf(out + (n < len ? n : 0), len > n ? len - n : 0, "%d", ${f});`, '}',
    );
  }
  lines.push(`double entry_${i}(void) {`, '  double v[64];', '  for (int k = 0; k < 64; k++) v[k] = rand() / (double)RAND_MAX;', '  double s = 0;');
  for (let f = 0; f < 24; f++) lines.push(`  s += calc_${i}_${f}(v, 64);`);
  lines.push('  char b[128];', `  s += text_${i}_0(b, sizeof b, "objcache");`, '  return s;', '}', '');
  return lines.join('\n');
}

async function prepare(work: string): Promise<string> {
  await fs.chmod(work, 0o755);
  for (const dir of ['tmp', 'home', 'src']) await fs.mkdir(path.join(work, dir));
  await fs.chmod(path.join(work, 'tmp'), 0o1777);
  const src = path.join(work, 'src');
  const objs: string[] = [];
  for (let i = 0; i < FILES; i++) {
    await fs.writeFile(path.join(src, `f${i}.c`), sourceOf(i));
    objs.push(`f${i}.o`);
  }
  await fs.writeFile(path.join(src, 'Makefile'), `all: ${objs.join(' ')}\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\nclean:\n\trm -f *.o\n`);
  return src;
}

function clientEnv(work: string, hosts: string): NodeJS.ProcessEnv {
  const home = path.join(work, 'home');
  return { ...process.env, HOME: home, DISTCC_DIR: home, DISTCC_HOSTS: hosts, DISTCC_FALLBACK: '0', DISTCC_BACKOFF_PERIOD: '0', DISTCC_SKIP_LOCAL_RETRY: '1' };
}

/** One `make -j4` from clean, timed; protocol 2 through Debian's distcc, 3 through the pump client. */
async function build(work: string, src: string, server: Server, protocol: 2 | 3): Promise<number> {
  await exec('make', ['-s', '-C', src, 'clean']);
  const start = process.hrtime.bigint();
  if (protocol === 2) {
    await exec('make', ['-s', '-j4', '-C', src, 'CC=distcc gcc'], { env: clientEnv(work, `127.0.0.1:${server.port}/4,lzo`), maxBuffer: 16 << 20 });
  } else {
    const { distcc } = await realPump();
    const r = await runPump(['make', '-s', '-j4', '-C', src, `CC=${distcc} gcc`], { cwd: src, port: server.port, home: path.join(work, 'home') });
    if (r.code !== 0) throw new Error(`pump make failed (${r.code}): ${r.stderr.slice(-2000)}`);
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const objects = (await fs.readdir(src)).filter((f) => f.endsWith('.o')).length;
  if (objects !== FILES) throw new Error(`${server.name} built ${objects} of ${FILES} objects`);
  return ms;
}

async function emptyCache(dir: string): Promise<void> {
  for (const sub of await fs.readdir(dir).catch(() => [] as string[])) if (/^[0-9a-f]{2}$/.test(sub)) await fs.rm(path.join(dir, sub), { recursive: true, force: true });
}

function protocol2Request(argv: readonly string[], doti: Buffer): Buffer {
  const hdr = (tok: string, n: number): Buffer => Buffer.from(tok + n.toString(16).padStart(8, '0'), 'latin1');
  return Buffer.concat([hdr('DIST', 1), hdr('ARGC', argv.length), ...argv.flatMap((a) => [hdr('ARGV', Buffer.byteLength(a)), Buffer.from(a)]), hdr('DOTI', doti.length), doti]);
}

async function rawJob(port: number, request: Buffer): Promise<number> {
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (d) => chunks.push(d));
    s.once('error', reject);
    s.once('close', () => (/^DONE00000001STAT00000000/.test(Buffer.concat(chunks).toString('latin1', 0, 24)) ? resolve() : reject(new Error('job failed'))));
  });
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

async function main(): Promise<void> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'distkit-objbench-'));
  const servers: Server[] = [];
  // Ctrl-C or a SIGTERM still stops the servers (C distccd leaves our process group) and removes the work dir.
  const abort = (signal: NodeJS.Signals): void => {
    void Promise.all(servers.map(stopServer))
      .finally(() => fs.rm(work, { recursive: true, force: true }))
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    const src = await prepare(work);
    await realPump();
    const cache = path.join(work, 'cache');
    const c = await startServer('c', work, []);
    servers.push(c);
    const off = await startServer('ours-off', work, ['--no-cache']);
    servers.push(off);
    const on = await startServer('ours-cache', work, ['--cache-dir', cache]);
    servers.push(on);
    const rows: Array<[string, number, number]> = [];
    for (const protocol of [2, 3] as const) {
      // One unmeasured build each: page cache, and the daemons have run their job path once.
      for (const s of servers) await build(work, src, s, protocol);
      await emptyCache(cache);
      const cold = await build(work, src, c, protocol);
      const offMs = await build(work, src, off, protocol);
      await emptyCache(cache);
      const coldCache = await build(work, src, on, protocol);
      const warm = await build(work, src, on, protocol);
      rows.push([`p${protocol} C distccd cold`, cold, cold], [`p${protocol} ours --no-cache`, offMs, cold], [`p${protocol} ours cache cold`, coldCache, cold], [`p${protocol} ours warm`, warm, cold]);
      console.log(`protocol ${protocol}: C ${cold.toFixed(0)} ms, ours off ${offMs.toFixed(0)} ms, cache cold ${coldCache.toFixed(0)} ms, warm ${warm.toFixed(0)} ms`);
    }
    // A hit's round trip: one cached protocol-2 job, again and again.
    const pre = await exec('gcc', ['-E', path.join(src, 'f0.c')], { maxBuffer: 16 << 20 });
    const request = protocol2Request(['gcc', '-O2', '-c', 'f0.c', '-o', 'f0.o'], Buffer.from(pre.stdout));
    await rawJob(on.port, request);
    const hits: number[] = [];
    for (let i = 0; i < HIT_JOBS; i++) hits.push(await rawJob(on.port, request));
    const log = await fs.readFile(on.log, 'utf8');
    console.log(`\n${FILES} files, make -j4, --jobs 4; load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs (shared machine)`);
    console.log(`${'build'.padEnd(24)} ${'wall ms'.padStart(9)}  vs C cold`);
    for (const [name, ms, base] of rows) console.log(`${name.padEnd(24)} ${ms.toFixed(0).padStart(9)}  ${(ms / base).toFixed(3)}`);
    for (const p of [2, 3]) {
      const [, cold, , off, , coldCache, , warm] = rows.filter((r) => r[0].startsWith(`p${p}`)).flatMap((r) => [r[0], r[1]]) as [string, number, string, number, string, number, string, number];
      console.log(`p${p}: warm is ${(cold / warm).toFixed(2)}x faster than C cold; the cache costs a cold build ${(((coldCache - off) / off) * 100).toFixed(1)}% against cache off`);
    }
    console.log(`hit round trip (raw protocol-2 request, loopback, ${HIT_JOBS} jobs): median ${median(hits).toFixed(3)} ms, min ${Math.min(...hits).toFixed(3)} ms`);
    console.log(`ours-cache log: ${(log.match(/cache:hit/g) ?? []).length} hits, ${(log.match(/cache:miss/g) ?? []).length} misses`);
  } finally {
    for (const s of servers) await stopServer(s);
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
});
