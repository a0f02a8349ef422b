// The real dc_server program: every golden vector over TCP, IPv6 and a unix socket, option errors
// and exit statuses, the statistics line, -killable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Program, RawClient, runToExit, dialOf, replayVector } from './cache_harness';
import { tempDir } from '../support/temp_dir';
import { loadGoldenVectors } from '../cache/golden_vectors';
import { encodeMessage } from '../../src/cache/wire/frame';
import { Operation, Status } from '../../src/cache/wire/constants';
import { formatProgressLine } from '../../src/cache/progress';
import { CacheClient } from '../../src/cache/client';

const HAVE_NOTHING = encodeMessage({ isResponse: false, uid: 99, operation: Operation.HAVE }, Buffer.from('nothing'));
const HAVE_MISS = encodeMessage({ isResponse: true, uid: 99, operation: Operation.HAVE }, Buffer.from([1]));

/** Every golden vector against a fresh dc_server on `transport`, then a sound request after it. */
async function replayGoldenVectors(t: { after(fn: () => void): void }, transport: 'tcp' | 'ipv6' | 'unix', env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const dir = tempDir(t, 'dc-server-');
  for (const [i, vector] of loadGoldenVectors().entries()) {
    const listen = { tcp: 'IP:127.0.0.1:0', ipv6: 'IP:[::1]:0', unix: `UNIX:${path.join(dir, `v${i}.sock`)}` }[transport];
    const server = new Program('dc_server', ['-listen', listen, ...vector.serverArgs], env);
    try {
      const [address] = await server.listening();
      await replayVector(vector, dialOf(address!));
      // A corrupt request (even a wrong protocol version, which aborts the C server) closes
      // only that connection: the server still answers a new one.
      const after = new RawClient(dialOf(address!));
      await after.ready;
      after.socket.write(HAVE_NOTHING);
      assert.deepEqual(await after.take(HAVE_MISS.length), HAVE_MISS, `${vector.name}: server still serving`);
      after.destroy();
      assert.equal(server.running, true);
    } finally {
      await server.stop();
    }
  }
}

for (const transport of ['tcp', 'ipv6', 'unix'] as const) {
  test(`dc_server answers every golden vector byte for byte over ${transport}`, (t) => replayGoldenVectors(t, transport));
}

// The way back from the native socket pump (its listeners and sessions): Node's own sockets.
for (const transport of ['tcp', 'unix'] as const) {
  test(`dc_server answers every golden vector byte for byte over ${transport} when DISTKIT_CACHE_IO=stream keeps it on Node's sockets`, (t) =>
    replayGoldenVectors(t, transport, { ...process.env, DISTKIT_CACHE_IO: 'stream' }));
}

test('dc_server keeps serving other connections while one sends garbage', async (t) => {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0']);
  t.after(() => server.stop());
  const [address] = await server.listening();
  const good = new RawClient(dialOf(address!));
  const bad = new RawClient(dialOf(address!));
  t.after(() => good.destroy());
  await Promise.all([good.ready, bad.ready]);
  bad.socket.write('GET / HTTP/1.0\r\n\r\n');
  assert.equal(await bad.waitClosed(), true);
  good.socket.write(HAVE_NOTHING);
  assert.deepEqual(await good.take(HAVE_MISS.length), HAVE_MISS);
  assert.match(server.stderr, /protocol version/);
});

test('dc_server reports option errors with the original messages and exit status 1', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['-listen', 'IP:0', '-bogus'], /^Error, "-bogus" not recognised\n\nUsage: dc_server \[options\]/],
    [['-listen'], /^Error, -listen requires an argument\n\nUsage: dc_server/],
    [['-listen', 'IP:0', '-sessions', '63'], /^Error, -sessions given an invalid argument\n/],
    [['-listen', 'IP:0', '-sessions', '10000001'], /^Error, -sessions given an invalid argument\n/],
    [['-listen', 'IP:0', '-sessions', 'many'], /^Error, -sessions given an invalid argument\n/],
    [['-listen', 'IP:0', '-progress', '1000001'], /^Error, -progress given an invalid argument\n/],
    [['-listen', 'IP:0', '-sockperms', '8'], /^Error, -sockperms given an invalid argument\n/],
    [['-listen', 'IP:0', '-listen'], /^Error, -listen requires an argument\n/],
    [['--', 'x'], /^Error, "--" not recognised\n/],
    [[], /^Error, must provide -listen\n$/],
    [['-listen', 'UNIX:/' + 'x'.repeat(120)], /unix socket path holds at most 107/],
    [['-listen', 'TCP:9001'], /Bad address "TCP:9001"/],
  ];
  for (const [args, want] of cases) {
    const r = await runToExit('dc_server', args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, want, args.join(' '));
  }
});

test('dc_server prints its usage and exits 0 for -h, -help and -?', async () => {
  for (const h of ['-h', '-help', '-?']) {
    const r = await runToExit('dc_server', ['-listen', 'IP:0', h]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /^\nUsage: dc_server \[options\]/);
    assert.match(r.stderr, /-sessions <num>/);
    assert.match(r.stderr, /-maxmemory <MB>/);
  }
});

test('dc_server exits with status 1 and a clear line when it cannot bind', async (t) => {
  const first = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0']);
  t.after(() => first.stop());
  const [address] = await first.listening();
  const r = await runToExit('dc_server', ['-listen', `IP:${address}`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot bind 127\.0\.0\.1:\d+: address in use/);
});

test('dc_server prints the statistics line every -progress operations', async (t) => {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', '-progress', '4']);
  t.after(() => server.stop());
  const [address] = await server.listening();
  const c = new RawClient(dialOf(address!));
  t.after(() => c.destroy());
  await c.ready;
  const add = (uid: number): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(60_000, 0);
    head.writeUInt32BE(4, 4);
    return encodeMessage({ isResponse: false, uid, operation: Operation.ADD }, Buffer.concat([head, Buffer.from(`id${String(uid).padStart(2, '0')}`), Buffer.from('d')]));
  };
  for (let uid = 1; uid <= 4; uid++) c.socket.write(add(uid));
  await c.take(4 * 15);
  await server.waitUntil('the statistics line', () => /Info, total operations/.test(server.stderr));
  assert.ok(server.stderr.includes(formatProgressLine(4, 0, 4, 0)), server.stderr);
  assert.ok(server.stderr.includes('Info, total operations =       4  (+     4), total sessions =     4  (+  4)'));
});

test('dc_server exits 0 on SIGUSR1 with -killable and ignores it without', async (t) => {
  const dir = tempDir(t, 'dc-server-kill-');
  const killable = new Program('dc_server', ['-listen', `UNIX:${path.join(dir, 'k.sock')}`, '-killable']);
  let stubborn: Program | undefined;
  t.after(async () => {
    await Promise.all([killable.stop(), stubborn?.stop()]);
  });
  await killable.listening();
  killable.child.kill('SIGUSR1');
  assert.deepEqual(await killable.exited, { code: 0, signal: null });
  stubborn = new Program('dc_server', ['-listen', `UNIX:${path.join(dir, 's.sock')}`]);
  const [address] = await stubborn.listening();
  stubborn.child.kill('SIGUSR2');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(stubborn.running, true);
  const c = new RawClient(dialOf(address!));
  await c.ready;
  c.socket.write(HAVE_NOTHING);
  assert.deepEqual(await c.take(HAVE_MISS.length), HAVE_MISS);
  c.destroy();
});

test('dc_server listens on several addresses at once and sets -sockperms on its unix socket', async (t) => {
  const dir = tempDir(t, 'dc-server-multi-');
  const sock = path.join(dir, 'multi.sock');
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', '-listen', `UNIX:${sock}`, '-sockperms', '600']);
  t.after(async () => {
    await server.stop();
  });
  const addresses = await server.listening();
  assert.equal(addresses.length, 2);
  for (const a of addresses) {
    const c = new RawClient(dialOf(a));
    await c.ready;
    c.socket.write(HAVE_NOTHING);
    assert.deepEqual(await c.take(HAVE_MISS.length), HAVE_MISS, a);
    c.destroy();
  }
  assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
});

test('dc_server says max=unlimited in its listening line when it puts no limit on connections', async (t) => {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0']);
  t.after(async () => {
    await server.stop();
  });
  await server.listening();
  // "max=0" read as "no connection allowed"; dc_server serves any number at once.
  assert.match(server.stderr, /listening on=127\.0\.0\.1:\d+ max=unlimited\n/);
});

test('dc_server -sessions 0 holds as many sessions as -maxmemory allows, evicting the soonest to expire', async (t) => {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', '-sessions', '0', '-maxmemory', '1']);
  t.after(() => server.stop());
  const [address] = await server.listening();
  const client = await CacheClient.connect(dialOf(address!) as { host: string; port: number });
  t.after(() => client.destroy());
  const data = Buffer.alloc(30_000, 7);
  // 100 sessions of 30 KB (3 MB) under a 1 MB bound; later ones expire later, so early ones go.
  const statuses = await Promise.all(Array.from({ length: 100 }, (_, i) => client.add(`s${i}`, data, 60_000 + i)));
  assert.deepEqual(statuses, Array(100).fill(Status.OK));
  assert.equal(await client.have('s99'), true);
  assert.equal(await client.have('s0'), false);
  let kept = 0;
  for (let i = 0; i < 100; i++) if (await client.have(`s${i}`)) kept++;
  assert.ok(kept >= 20 && kept <= 35, `kept ${kept} sessions of 30 KB under 1 MB`);
  const r = await runToExit('dc_server', ['-listen', 'IP:0', '-sessions', '0', '-maxmemory', '0']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error, -maxmemory given an invalid argument\n/);
});

test('dc_server -sockowner alone gives the socket file that user and its primary group, as libnal did', async (t) => {
  const dir = tempDir(t, 'dc-server-owner-');
  const sock = path.join(dir, 'owned.sock');
  const server = new Program('dc_server', ['-listen', `UNIX:${sock}`, '-sockowner', 'nobody']);
  t.after(async () => {
    await server.stop();
  });
  await server.listening();
  const st = fs.statSync(sock);
  assert.deepEqual([st.uid, st.gid], [65534, 65534]);
  const r = await runToExit('dc_server', ['-listen', `UNIX:${path.join(dir, 'x.sock')}`, '-sockowner', 'no-such-user-here']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Unknown user "no-such-user-here"/);
});
