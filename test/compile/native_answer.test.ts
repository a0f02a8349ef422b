// The answer sent from the compiler's exit handler (NativeAnswer) must be byte for byte what the
// JavaScript path would send (encodeResponse of the captures and the object), and must step
// aside whenever that path has something else to say: an unreadable object, a capture too large
// for it, a job that timed out or whose client left. The client end here is a real socket.
//
// Two writers of one answer are kept in step by one set of vectors (test/fixtures/compile/
// answer_vectors.json): each case's bytes, written out by hand from serve.c's order, must come
// out of both. A single writer would cost what the native one is for: answering before any
// JavaScript runs (in C only) or LZO and DOTD for protocols 2 and 3 in C (in C for all).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { openCaptures, runCompiler, type CompilerOutcome } from '../../src/compile/compiler_process';
import { encodeResponse } from '../../src/compile/wire/response';
import { tempDir } from '../support/temp_dir';

const ENV = { PATH: '/usr/bin:/bin' };

interface Pair {
  /** The server's end: the socket the exit handler answers on. */
  readonly server: net.Socket;
  readonly fd: number;
  /** The client end's descriptor (both ends live in this process). */
  readonly clientFd: number;
  /** Everything the client end has read, once it sees EOF or `ms` pass. */
  received(ms?: number): Promise<Buffer>;
  close(): void;
}

/** A connected pair of TCP sockets on loopback; the client end may start paused. */
async function socketPair(options: { paused?: boolean; allowHalfOpen?: boolean } = {}): Promise<Pair> {
  const listener = net.createServer({ allowHalfOpen: options.allowHalfOpen === true });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen === true });
  if (options.paused === true) client.pause();
  const chunks: Buffer[] = [];
  client.on('data', (d: Buffer) => chunks.push(d));
  const ended = new Promise<void>((resolve) => client.once('end', resolve));
  const server = await accepted;
  listener.close();
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const clientFd = (client as unknown as { _handle: { fd: number } })._handle.fd;
  assert.ok(fd >= 0);
  return {
    server,
    fd,
    clientFd,
    async received(ms = 5000) {
      client.resume();
      await Promise.race([ended, new Promise((r) => setTimeout(r, ms))]);
      return Buffer.concat(chunks);
    },
    close() {
      client.destroy();
      server.destroy();
    },
  };
}

/** Runs `script` under sh with the answer planned on `pair`, then ends the server side. */
async function answerFrom(pair: Pair, dir: string, script: string, object: string, extra: { lifetimeMs?: number; signal?: AbortSignal; version?: number } = {}): Promise<CompilerOutcome> {
  const captures = openCaptures(dir);
  try {
    const run = await runCompiler({ argv: ['sh', '-c', script], cwd: dir, env: ENV, nice: 0, lifetimeMs: extra.lifetimeMs ?? 0, signal: extra.signal, captures, answer: { socket: pair.fd, version: extra.version ?? 1, object } });
    if (run.kind === 'answered' && run.rest !== undefined) pair.server.write(run.rest);
    pair.server.end();
    return run;
  } finally {
    captures.close();
  }
}

/** One protocol-1 answer; strings are bytes (latin1), as in the JSON. */
interface AnswerVector {
  readonly name: string;
  readonly version: number;
  /** How the test compiler ends: exit code or signal name (no core dump). */
  readonly exit?: number;
  readonly signal?: string;
  readonly status: number;
  readonly stderr: string;
  readonly stdout: string;
  /** What the compiler writes; sent only when status is 0. */
  readonly object: string;
  readonly wire: string;
}

const VECTORS = (JSON.parse(readFileSync(path.join(__dirname, '../../../test/fixtures/compile/answer_vectors.json'), 'utf8')) as { cases: AnswerVector[] }).cases;
const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

test('encodeResponse writes every answer vector byte for byte', () => {
  assert.ok(VECTORS.length >= 5);
  for (const v of VECTORS) {
    const written = Buffer.concat(encodeResponse({ version: v.version, status: v.status, stderr: bytes(v.stderr), stdout: bytes(v.stdout), object: bytes(v.object) }));
    assert.deepEqual(written, bytes(v.wire), v.name);
  }
});

test('the exit handler writes every answer vector byte for byte', async (t) => {
  for (const v of VECTORS) {
    const dir = tempDir(t, 'distkit-answer-');
    const pair = await socketPair();
    t.after(() => pair.close());
    await Promise.all([['err', v.stderr], ['out', v.stdout], ['obj', v.object]].map(([name, text]) => fs.writeFile(path.join(dir, name!), bytes(text!))));
    const object = path.join(dir, 'out.o');
    const end = v.signal !== undefined ? `ulimit -c 0; kill -${v.signal} $$` : `exit ${v.exit ?? 0}`;
    const run = await answerFrom(pair, dir, `cat err >&2; cat out; cat obj > ${object}; ${end}`, object, { version: v.version });
    assert.ok(run.kind === 'answered' && run.status === v.status, `${v.name}: ${JSON.stringify(run)}`);
    assert.deepEqual(await pair.received(), bytes(v.wire), v.name);
  }
});

test('a successful job is answered from the exit handler exactly as encodeResponse would', async (t) => {
  const dir = tempDir(t, 'distkit-answer-');
  const pair = await socketPair();
  t.after(() => pair.close());
  const object = path.join(dir, 'out.o');
  const run = await answerFrom(pair, dir, `printf 'warning: w\\n' >&2; printf 'out'; head -c 70000 /dev/urandom > ${object}`, object);
  assert.equal(run.kind, 'answered');
  assert.equal(run.kind === 'answered' && run.status, 0);
  const expected = Buffer.concat(encodeResponse({ version: 1, status: 0, stderr: Buffer.from('warning: w\n'), stdout: Buffer.from('out'), object: await fs.readFile(object) }));
  assert.deepEqual(await pair.received(), expected);
});

test('a failed compile is answered with its status, both captures and an empty DOTO', async (t) => {
  const dir = tempDir(t, 'distkit-answer-');
  const pair = await socketPair();
  t.after(() => pair.close());
  const object = path.join(dir, 'never.o');
  const run = await answerFrom(pair, dir, `printf 't.c:1: error: x\\n' >&2; exit 3`, object);
  assert.equal(run.kind, 'answered');
  const expected = Buffer.concat(encodeResponse({ version: 1, status: 3 << 8, stderr: Buffer.from('t.c:1: error: x\n'), stdout: Buffer.alloc(0), object: Buffer.alloc(0) }));
  assert.deepEqual(await pair.received(), expected);
});

test('the exit handler declines, sending nothing, when the object cannot be read or a capture is over 1 MiB', async (t) => {
  const dir = tempDir(t, 'distkit-answer-');
  const missing = await socketPair();
  t.after(() => missing.close());
  const run = await answerFrom(missing, dir, 'printf note >&2; exit 0', path.join(dir, 'absent.o'));
  assert.equal(run.kind, 'exited');
  assert.equal(run.kind === 'exited' && run.stderr.toString(), 'note', 'the captures are still there for the caller');
  assert.equal((await missing.received()).length, 0);

  const loud = await socketPair();
  t.after(() => loud.close());
  const object = path.join(dir, 'loud.o');
  const big = await answerFrom(loud, dir, `head -c ${(1 << 20) + 1} /dev/zero >&2; : > ${object}`, object);
  assert.equal(big.kind, 'exited');
  assert.equal(big.kind === 'exited' && big.stderr.length, (1 << 20) + 1);
  assert.equal((await loud.received()).length, 0);
});

test('a job that times out or whose client leaves is not answered by the exit handler', async (t) => {
  const dir = tempDir(t, 'distkit-answer-');
  const object = path.join(dir, 'slow.o');
  const late = await socketPair();
  t.after(() => late.close());
  const timedOut = await answerFrom(late, dir, `: > ${object}; exec sleep 30`, object, { lifetimeMs: 200 });
  assert.equal(timedOut.kind, 'timeout');
  assert.equal((await late.received()).length, 0);

  const gone = await socketPair();
  t.after(() => gone.close());
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  const aborted = await answerFrom(gone, dir, `: > ${object}; exec sleep 30`, object, { signal: controller.signal });
  assert.equal(aborted.kind, 'aborted');
  assert.equal((await gone.received()).length, 0);
});

test('an answer larger than the socket takes at once comes back as the rest to write, in order', async (t) => {
  const dir = tempDir(t, 'distkit-answer-');
  const pair = await socketPair({ paused: true });
  t.after(() => pair.close());
  pair.server.setNoDelay(true);
  const object = path.join(dir, 'big.o');
  // 48 MiB: more than loopback's socket buffers hold while the client is not reading.
  const run = await answerFrom(pair, dir, `head -c ${48 << 20} /dev/urandom > ${object}`, object);
  assert.equal(run.kind, 'answered');
  assert.ok(run.kind === 'answered' && run.rest !== undefined && run.rest.length > 0, 'part of it is left for the stream');
  const expected = Buffer.concat(encodeResponse({ version: 1, status: 0, stderr: Buffer.alloc(0), stdout: Buffer.alloc(0), object: await fs.readFile(object) }));
  const got = await pair.received(20_000);
  assert.equal(got.length, expected.length);
  assert.ok(got.equals(expected));
});

test('a socket that can no longer send makes the answer fail (unanswered), not the daemon', async (t) => {
  const dir = tempDir(t, 'distkit-answer-');
  const pair = await socketPair({ allowHalfOpen: true });
  t.after(() => pair.close());
  // Our end already shut down for writing (and kept open): the next send is EPIPE, as after a
  // client's reset.
  await new Promise<void>((resolve) => pair.server.end(resolve));
  const object = path.join(dir, 'o.o');
  const captures = openCaptures(dir);
  t.after(() => captures.close());
  const run = await runCompiler({ argv: ['sh', '-c', `head -c 100000 /dev/zero > ${object}`], cwd: dir, env: ENV, nice: 0, lifetimeMs: 0, captures, answer: { socket: pair.fd, version: 1, object } });
  assert.equal(run.kind, 'unanswered');
  assert.match(run.kind === 'unanswered' ? run.reason : '', /EPIPE/);
});

test('a socket closed during the compile, its number taken by another socket, gets nothing', async (t) => {
  const dir = tempDir(t, 'distkit-answer-');
  const first = await socketPair();
  t.after(() => first.close());
  const object = path.join(dir, 'o.o');
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  t.after(() => listener.close());
  const heard: Buffer[] = [];
  listener.on('connection', (s: net.Socket) => s.on('data', (d: Buffer) => heard.push(d)));
  let reused: net.Socket | undefined;
  const reuse = (async () => {
    await new Promise((r) => setTimeout(r, 150));
    first.server.destroy(); // closes the descriptor now; 'close' comes later
    reused = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1'); // the lowest free number
    await new Promise((resolve) => reused!.once('connect', resolve));
  })();
  const captures = openCaptures(dir);
  t.after(() => captures.close());
  const run = await runCompiler({ argv: ['sh', '-c', `sleep 0.5; printf x > ${object}`], cwd: dir, env: ENV, nice: 0, lifetimeMs: 0, captures, answer: { socket: first.fd, version: 1, object } });
  await reuse;
  t.after(() => reused?.destroy());
  assert.equal((reused as unknown as { _handle: { fd: number } })._handle.fd, first.fd, 'the closed number was taken again');
  assert.equal(run.kind, 'exited', 'declined: the descriptor is not the socket it was');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(Buffer.concat(heard).length, 0);
});

test('a descriptor that is not a socket (ssh and inetd pipes) is answered by the caller', async (t) => {
  const dir = tempDir(t, 'distkit-answer-');
  const object = path.join(dir, 'o.o');
  const captures = openCaptures(dir);
  t.after(() => captures.close());
  // A capture file stands in for a pipe: any descriptor that is not a socket.
  const run = await runCompiler({ argv: ['sh', '-c', `printf x > ${object}`], cwd: dir, env: ENV, nice: 0, lifetimeMs: 0, captures, answer: { socket: captures.stdout, version: 1, object } });
  assert.equal(run.kind, 'exited');
});
