import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as native from 'distkit-spawn';
import type { PeerAddress } from '../../src/activation/connection';
import { pumpedListeners, type OnPumpedAccept } from '../../src/activation/pumped_listener';
import { ConnectionPool } from '../../src/activation/serve';
import { adoptListener, bindListeners, closeListeners, type ListenerOpener } from '../../src/activation/standalone';
import type { PumpedSocket } from '../../src/activation/socket_pump';
import { createLogger } from '../../src/log/index';
import { DistkitError } from '../../src/errors';
import { Recorder } from './pump_recorder';

/** Pump listeners whose accepted connections queue up for the test to take. */
function accepting(): { opener: ListenerOpener; next(): Promise<{ socket: PumpedSocket; peer: PeerAddress; listener: string }> } {
  const waiting: Array<{ socket: PumpedSocket; peer: PeerAddress; listener: string }> = [];
  let wake: (() => void) | undefined;
  const onAccept: OnPumpedAccept = (socket, peer, listener) => {
    waiting.push({ socket, peer, listener });
    wake?.();
  };
  const opener = pumpedListeners(onAccept);
  assert.ok(opener !== undefined, 'the pump opens on the main thread');
  return {
    opener,
    async next() {
      while (waiting.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return waiting.shift()!;
    },
  };
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pumped-listener-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

test('pumped listener serves a TCP connection with its peer address when a client connects over loopback', async (t) => {
  const { opener, next } = accepting();
  const [listener] = await bindListeners([{ kind: 'tcp', host: '127.0.0.1', port: 0, name: 'cache' }], opener);
  t.after(() => listener!.close());
  const port = Number(/^127\.0\.0\.1:(\d+)$/.exec(listener!.address)?.[1]);
  assert.ok(port > 0, `bound address ${listener!.address}`);
  const client = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  t.after(() => client.destroy());
  await new Promise((resolve) => client.once('connect', resolve));
  client.write('hello');
  const accepted = await next();
  assert.equal(accepted.listener, 'cache');
  assert.deepEqual(accepted.peer, { kind: 'tcp', address: '127.0.0.1', port: client.localPort, family: 'IPv4' });
  const recorder = new Recorder();
  accepted.socket.attach(recorder);
  await recorder.until(() => recorder.data.length === 5);
  assert.equal(recorder.data.toString(), 'hello');
  const answer = new Promise<Buffer>((resolve) => client.once('data', resolve));
  accepted.socket.write(Buffer.from('world'));
  assert.equal((await answer).toString(), 'world');
  client.end();
  await recorder.until(() => recorder.events.includes('end'));
  assert.equal(accepted.socket.end(), true, 'closed at once: the peer had ended');
});

test('pumped listener holds what a connection sends until a handler attaches when its pool queued it', async (t) => {
  const file = path.join(tempDir(t), 'held.sock');
  const pool = new ConnectionPool({ log: createLogger('t', { level: 'warning' }), maxConnections: 1, handlers: { main: async () => undefined } });
  const recorders: Recorder[] = [];
  let finishFirst!: () => void;
  const firstDone = new Promise<void>((resolve) => (finishFirst = resolve));
  const pumpedOpener = pumpedListeners((socket, peer, name) =>
    void pool.admitPumped(socket, peer, name, async (conn) => {
      const recorder = new Recorder();
      recorders.push(recorder);
      conn.socket.attach(recorder);
      if (recorders.length === 1) await firstDone;
      else await recorder.until(() => recorder.events.includes('end'));
    }),
  )!;
  const [listener] = await bindListeners([{ kind: 'unix', path: file }], pumpedOpener);
  t.after(() => listener!.close());
  const first = net.connect({ path: file });
  t.after(() => first.destroy());
  await new Promise((resolve) => first.once('connect', resolve));
  while (pool.active === 0) await turns(1);
  const second = net.connect({ path: file, allowHalfOpen: true });
  t.after(() => second.destroy());
  await new Promise((resolve) => second.once('connect', resolve));
  await new Promise((resolve) => second.end('queued request', () => resolve(undefined)));
  // The bytes are in the kernel when end's callback runs: a few turns of the loop and the pump has read them, held.
  while (pool.queued === 0) await turns(1);
  await turns(5);
  assert.equal(recorders.length, 1, 'the second connection waits for the first');
  finishFirst();
  while (recorders.length < 2) await turns(1);
  const held = recorders[1]!;
  await held.until(() => held.events.includes('end'));
  assert.equal(held.data.toString(), 'queued request');
  assert.deepEqual(held.events, ['data', 'end']);
});

test('pool fails a pumped connection whose handler throws before it awaits: logged, socket closed, slot freed', async (t) => {
  const file = path.join(tempDir(t), 'throws.sock');
  const lines: string[] = [];
  const log = createLogger('t', { level: 'warning' });
  log.setSinks([{ write: (level, line) => lines.push(`${level}: ${line}`) }]);
  const pool = new ConnectionPool({ log, maxConnections: 1, handlers: { main: async () => undefined } });
  let served = 0;
  const pumpedOpener = pumpedListeners((socket, peer, name) =>
    pool.admitPumped(socket, peer, name, (conn) => {
      served++;
      if (served === 1) throw new Error('boom');
      return new Promise<void>((resolve) => {
        conn.socket.attach(Object.assign(new Recorder(), { onEnd: () => resolve() }));
      });
    }),
  )!;
  const [listener] = await bindListeners([{ kind: 'unix', path: file }], pumpedOpener);
  t.after(() => listener!.close());
  for (let i = 0; i < 2; i++) {
    const client = net.connect({ path: file, allowHalfOpen: true });
    t.after(() => client.destroy());
    const closed = new Promise<void>((resolve) => client.once('end', resolve));
    await new Promise((resolve) => client.once('connect', resolve));
    client.end();
    await closed; // the first: destroyed after its failure; the second: served (a slot was free)
  }
  while (pool.active > 0) await turns(1);
  assert.equal(served, 2);
  assert.deepEqual(lines, ['err: handler failed conn=1 peer=unix error=boom']);
});

test('pool finishes a pumped connection whose handler returns nothing when it calls finished: slot freed once, socket closed, the queued one served', async (t) => {
  const file = path.join(tempDir(t), 'finished.sock');
  const pool = new ConnectionPool({ log: createLogger('t', { level: 'warning' }), maxConnections: 1, handlers: { main: async () => undefined } });
  const served: Array<() => void> = [];
  const pumpedOpener = pumpedListeners((socket, peer, name) =>
    pool.admitPumped(socket, peer, name, (conn, finished) => {
      conn.socket.attach(new Recorder());
      served.push(finished);
    }),
  )!;
  const [listener] = await bindListeners([{ kind: 'unix', path: file }], pumpedOpener);
  t.after(() => listener!.close());
  const clients = [0, 1].map(() => net.connect({ path: file }));
  for (const client of clients) t.after(() => client.destroy());
  const firstClosed = new Promise<void>((resolve) => clients[0]!.once('end', resolve));
  while (served.length === 0 || pool.queued === 0) await turns(1);
  assert.equal(pool.active, 1);
  served[0]!();
  served[0]!(); // a second call changes nothing
  await firstClosed; // its socket was destroyed once the handler called
  while (served.length < 2) await turns(1);
  assert.equal(pool.active, 1, 'the queued connection took the freed slot, and only it');
  served[1]!();
  assert.equal(pool.active, 0);
  assert.equal(pool.queued, 0);
});

test('pumped listener gives its unix socket the mode asked for and unlinks it when closed', async (t) => {
  const { opener, next } = accepting();
  const file = path.join(tempDir(t), 'mode.sock');
  const listeners = await bindListeners([{ kind: 'unix', path: file, mode: 0o600 }], opener);
  assert.equal(listeners[0]!.address, `unix:${file}`);
  assert.equal(fs.lstatSync(file).mode & 0o777, 0o600);
  const client = net.connect({ path: file });
  t.after(() => client.destroy());
  const accepted = await next();
  assert.deepEqual(accepted.peer, { kind: 'unix' });
  accepted.socket.destroy();
  closeListeners(listeners);
  assert.equal(fs.existsSync(file), false, 'the socket file is gone');
  const refused = await new Promise<string | undefined>((resolve) => net.connect({ path: file }).once('error', (e: NodeJS.ErrnoException) => resolve(e.code)));
  assert.equal(refused, 'ENOENT');
});

test('pumped listener leaves the file at its path alone when it closes if that file is no longer the socket it bound', async (t) => {
  const { opener } = accepting();
  const file = path.join(tempDir(t), 'replaced.sock');
  const listeners = await bindListeners([{ kind: 'unix', path: file }], opener);
  // Another server's socket (a restart that overlapped our drain) stands there now.
  fs.rmSync(file);
  const other = net.createServer().listen(file);
  t.after(() => other.close());
  await new Promise((resolve) => other.once('listening', resolve));
  closeListeners(listeners);
  assert.equal(fs.lstatSync(file).isSocket(), true, "the other server's socket file is still there");
});

test('pumped listener refuses with the advice of a Node listener when the address is in use', async (t) => {
  const { opener } = accepting();
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  await assert.rejects(bindListeners([{ kind: 'tcp', host: '127.0.0.1', port }], opener), (error: unknown) => {
    assert.ok(error instanceof DistkitError);
    assert.equal(error.code, 'bind-failed');
    assert.match(error.message, /^Cannot bind 127\.0\.0\.1:\d+: address in use/);
    return true;
  });
});

test('pumped listener serves an inherited listening fd and refuses one that does not listen', async (t) => {
  const { opener, next } = accepting();
  const fd = native.pumpBindTcp('127.0.0.1', 0, 16);
  assert.ok(fd >= 0);
  const listener = await adoptListener(fd, 'main', opener);
  t.after(() => listener.close());
  const port = Number(/:(\d+)$/.exec(listener.address)?.[1]);
  const client = net.connect({ host: '127.0.0.1', port });
  t.after(() => client.destroy());
  const accepted = await next();
  assert.equal(accepted.peer.kind, 'tcp');
  accepted.socket.destroy();
  const notListening = fs.openSync('/dev/null', 'r');
  await assert.rejects(adoptListener(notListening, 'main', opener), /Cannot listen on inherited fd \d+: ENOTSOCK/);
});
