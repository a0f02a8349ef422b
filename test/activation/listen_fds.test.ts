import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { classifyFd, clearListenEnv, readListenFds, sameFile } from '../../src/activation/listen_fds';
import { tempDir, type AfterHook } from '../support/temp_dir';

/** The fd behind a Node handle (Linux: libuv exposes it), to look at real sockets. */
function fdOf(handleOwner: net.Server | net.Socket | dgram.Socket): number {
  return (handleOwner as unknown as { _handle: { fd: number } })._handle.fd;
}

/** A server listening as asked, closed when the test ends. */
async function listening(t: AfterHook, options: net.ListenOptions): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(options, r));
  t.after(() => server.close());
  return server;
}

/** Both ends of one connection to `server`, destroyed when the test ends. */
async function connectTo(t: AfterHook, server: net.Server): Promise<{ client: net.Socket; accepted: net.Socket }> {
  const accepting = once(server, 'connection') as Promise<[net.Socket]>;
  const where = server.address();
  const client = typeof where === 'string' ? net.connect(where) : net.connect((where as net.AddressInfo).port, (where as net.AddressInfo).address);
  await once(client, 'connect');
  const [accepted] = await accepting;
  t.after(() => [client, accepted].forEach((s) => s.destroy()));
  return { client, accepted };
}

test('readListenFds names fds from LISTEN_FDNAMES and maps unknown to main when LISTEN_PID is ours', () => {
  const env = { LISTEN_PID: '42', LISTEN_FDS: '3', LISTEN_FDNAMES: 'tcp:unknown:' };
  assert.deepEqual(readListenFds(env, 42), [
    { fd: 3, name: 'tcp' },
    { fd: 4, name: 'main' },
    { fd: 5, name: 'main' },
  ]);
});

test('readListenFds ignores the variables when LISTEN_PID is another process or LISTEN_FDS is bad', () => {
  assert.equal(readListenFds({ LISTEN_PID: '41', LISTEN_FDS: '1' }, 42), undefined);
  assert.equal(readListenFds({ LISTEN_PID: '42', LISTEN_FDS: 'x' }, 42), undefined);
  assert.equal(readListenFds({ LISTEN_PID: '42', LISTEN_FDS: '0' }, 42), undefined);
  assert.equal(readListenFds({}, 42), undefined);
});

test('clearListenEnv removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES and nothing else', () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a', NOTIFY_SOCKET: '/x' };
  clearListenEnv(env);
  assert.deepEqual(env, { NOTIFY_SOCKET: '/x' });
});

test('classifyFd tells listening TCP and unix sockets from connections, files and closed fds', async (t) => {
  const dir = tempDir(t, 'distkit-fds-');
  const tcp = await listening(t, { host: '127.0.0.1', port: 0 });
  const unix = await listening(t, { path: path.join(dir, 's') });
  const tcp6 = await listening(t, { host: '::1', port: 0 });
  const { client, accepted: server } = await connectTo(t, tcp);

  assert.equal(classifyFd(fdOf(tcp)), 'listening');
  assert.equal(classifyFd(fdOf(tcp6)), 'listening');
  assert.equal(classifyFd(fdOf(unix)), 'listening');
  assert.equal(classifyFd(fdOf(client)), 'socket');
  assert.equal(classifyFd(fdOf(server)), 'socket');
  const file = fs.openSync(path.join(dir, 'f'), 'w');
  assert.equal(classifyFd(file), 'other');
  fs.closeSync(file);
  assert.equal(classifyFd(file), 'closed');
  assert.equal(sameFile(fdOf(client), fdOf(client)), true);
  assert.equal(sameFile(fdOf(client), fdOf(server)), false);
});

test('classifyFd in a child tells each inherited fd apart when it is handed listeners, connections, UDP, a pipe and a file', async (t) => {
  // What systemd or inetd hands over: the child sees only descriptors, not Node handles.
  const dir = tempDir(t, 'distkit-fds-');
  const tcp = await listening(t, { host: '127.0.0.1', port: 0 });
  const unix = await listening(t, { path: path.join(dir, 's') });
  const { client } = await connectTo(t, unix);
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  t.after(() => udp.close());
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  const fifo = fs.openSync(path.join(dir, 'fifo'), 'r+'); // O_RDWR: a FIFO opened so never blocks
  const file = fs.openSync(path.join(dir, 'f'), 'w');
  t.after(() => [fifo, file].forEach((fd) => fs.closeSync(fd)));

  const handed = { tcp: fdOf(tcp), unix: fdOf(unix), connection: fdOf(client), udp: fdOf(udp), pipe: fifo, file };
  const script = [
    'const { classifyFd } = require(process.argv[1]);',
    'const names = JSON.parse(process.argv[2]);',
    'process.stdout.write(JSON.stringify(Object.fromEntries(names.map((name, i) => [name, classifyFd(3 + i)]))));',
  ].join('\n');
  const module = require.resolve('../../src/activation/listen_fds');
  const child = spawn(process.execPath, ['-e', script, module, JSON.stringify(Object.keys(handed))], {
    stdio: ['ignore', 'pipe', 'pipe', ...Object.values(handed)],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const [code] = (await once(child, 'close')) as [number | null];
  assert.equal(code, 0, stderr);
  assert.deepEqual(JSON.parse(stdout), {
    tcp: 'listening', unix: 'listening', connection: 'socket', udp: 'other', pipe: 'pipe', file: 'other',
  });
});
