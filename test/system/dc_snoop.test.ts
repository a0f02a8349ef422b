// dc_snoop as a real program: relays byte for byte between a client and a server and prints the
// frames it sees.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { Program, RawClient, runToExit, dialOf, libnalOf } from './cache_harness';
import { tempDir } from '../support/temp_dir';
import { loadGoldenVectors } from '../cache/golden_vectors';

test('dc_snoop reports option errors and prints its usage', async () => {
  const none = await runToExit('dc_snoop', ['-listen', 'IP:127.0.0.1:0']);
  assert.equal(none.code, 1);
  assert.equal(none.stderr, 'Error, must provide -connect and -listen\n');
  const bogus = await runToExit('dc_snoop', ['-bogus']);
  assert.equal(bogus.code, 1);
  assert.match(bogus.stderr, /^Error, "-bogus" not recognised\n\nUsage: dc_snoop \[options\]/);
  const missing = await runToExit('dc_snoop', ['-connect']);
  assert.match(missing.stderr, /^Error, -connect requires an argument\n/);
  const help = await runToExit('dc_snoop', ['-?']);
  assert.equal(help.code, 0);
  assert.match(help.stderr, /^\nUsage: dc_snoop \[options\]/);
});

test('dc_snoop relays every golden exchange unchanged and prints each frame', async (t) => {
  const dir = tempDir(t, 'dc-snoop-');
  const serverSock = path.join(dir, 'server.sock');
  const server = new Program('dc_server', ['-listen', `UNIX:${serverSock}`]);
  let snoop: Program | undefined;
  t.after(async () => {
    await Promise.all([server.stop(), snoop?.stop()]);
  });
  await server.listening();
  snoop = new Program('dc_snoop', ['-listen', 'IP:127.0.0.1:0', '-connect', `UNIX:${serverSock}`]);
  const [address] = await snoop.listening();
  const vectors = loadGoldenVectors().filter((v) => v.serverArgs.length === 0 && v.steps.every((s) => !s.closedByServer));
  assert.ok(vectors.length >= 3);
  for (const vector of vectors) {
    const c = new RawClient(dialOf(address!));
    await c.ready;
    for (const step of vector.steps) {
      c.socket.write(step.request);
      assert.equal((await c.take(step.response.length)).toString('hex'), step.response.toString('hex'), `${vector.name} / ${step.step}`);
    }
    c.destroy();
  }
  await snoop.waitUntil('the printed frames', () => /s2c uid=0x00000008 op=HAVE frame=1 complete=1 len=1 status=0x01\(NOTOK\)/.test(snoop.stdout));
  assert.match(snoop.stdout, /c2s uid=0x00000001 op=ADD frame=1 complete=1 len=29 timeout=300000 id_len=8 id=0102030405060708\(8\) data=68656c6c6f2d73657373696f6e\(13\)/);
  assert.match(snoop.stdout, /s2c uid=0x00000002 op=GET frame=1 complete=1 len=13 data=68656c6c6f2d73657373696f6e\(13\)/);
  assert.match(snoop.stdout, /c2s uid=0x01020304 op=ADD frame=2 complete=1/);
});

test('dc_snoop never alters a byte, even of traffic that is not distcache at all', async (t) => {
  // The far end is a plain recorder: it keeps what it receives and sends back its own bytes.
  const upstreamGot: Buffer[] = [];
  const reply = crypto.randomBytes(100_000);
  const recorder = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (d: Buffer) => upstreamGot.push(d));
    s.on('end', () => s.end(reply));
  });
  await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
  t.after(() => recorder.close());
  const port = (recorder.address() as net.AddressInfo).port;
  const snoop = new Program('dc_snoop', ['-listen', 'IP:127.0.0.1:0', '-server', `IP:127.0.0.1:${port}`]);
  t.after(() => snoop.stop());
  const [address] = await snoop.listening();
  const sent = Buffer.concat([Buffer.from('001100000000000001000301000801020304', 'hex'), crypto.randomBytes(200_000)]);
  const c = new RawClient(dialOf(address!));
  t.after(() => c.destroy());
  await c.ready;
  c.socket.end(sent);
  const got = await c.read(reply.length, 10_000);
  assert.equal(got.length, reply.length);
  assert.ok(got.equals(reply), 'server -> client bytes unchanged');
  assert.ok(Buffer.concat(upstreamGot).equals(sent), 'client -> server bytes unchanged');
  await snoop.waitUntil('the corrupt note', () => /s2c corrupt/.test(snoop.stdout));
  assert.match(snoop.stdout, /c2s corrupt at_byte=\d+ reason=/);
});

test('dc_snoop refuses a connect address without a host', async () => {
  const r = await runToExit('dc_snoop', ['-listen', 'IP:127.0.0.1:0', '-connect', 'IP:9001']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /name the host to connect to/);
  assert.equal(libnalOf('127.0.0.1:5'), 'IP:127.0.0.1:5');
});

test('dc_snoop closes a client whose server cannot be reached and keeps accepting', async (t) => {
  const dir = tempDir(t, 'dc-snoop-down-');
  const serverSock = path.join(dir, 'absent.sock');
  const snoop = new Program('dc_snoop', ['-listen', 'IP:127.0.0.1:0', '-connect', `UNIX:${serverSock}`]);
  let server: Program | undefined;
  t.after(async () => {
    await Promise.all([snoop.stop(), server?.stop()]);
  });
  const [address] = await snoop.listening();
  const early = new RawClient(dialOf(address!));
  await early.ready;
  assert.equal(await early.waitClosed(), true);
  // The close can reach the client before the log line reaches us: wait for the line.
  await snoop.waitForLine(/snoop relay error .*side=server error=ENOENT/);
  server = new Program('dc_server', ['-listen', `UNIX:${serverSock}`]);
  await server.listening();
  const vector = loadGoldenVectors()[0]!;
  const c = new RawClient(dialOf(address!));
  t.after(() => c.destroy());
  await c.ready;
  c.socket.write(vector.steps[6]!.request);
  assert.equal((await c.take(vector.steps[6]!.response.length)).toString('hex'), vector.steps[6]!.response.toString('hex'));
});
