import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { ConnectionPool } from '../../src/activation/serve';
import { createLogger, type LogSink } from '../../src/log/index';

function quietLog(lines: string[] = []): ReturnType<typeof createLogger> {
  const log = createLogger('t', { level: 'debug' });
  const sink: LogSink = { write: (level, line) => lines.push(`${level}: ${line}`) };
  log.setSinks([sink]);
  return log;
}

test('ConnectionPool serves every queued connection but never more than maxConnections at once', async () => {
  let active = 0;
  let peak = 0;
  const release: Array<() => void> = [];
  const pool = new ConnectionPool({
    log: quietLog(),
    maxConnections: 2,
    handlers: {
      main: async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise<void>((r) => release.push(r));
        active--;
        return 0;
      },
    },
  });
  const results = Array.from({ length: 6 }, () => pool.admit(new PassThrough(), { kind: 'pipe' }, 'main'));
  await new Promise((r) => setImmediate(r));
  assert.equal(pool.active, 2);
  assert.equal(pool.queued, 4);
  while (release.length > 0 || pool.active > 0) {
    release.shift()?.();
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await Promise.all(results), [0, 0, 0, 0, 0, 0]);
  assert.equal(peak, 2);
});

test('ConnectionPool picks the handler by listener name and falls back to main', async () => {
  const seen: string[] = [];
  const pool = new ConnectionPool({
    log: quietLog(),
    maxConnections: 0,
    handlers: {
      main: async (c) => void seen.push(`main:${c.listener}:${c.id}`),
      admin: async (c) => void seen.push(`admin:${c.listener}:${c.id}`),
    },
  });
  await pool.admit(new PassThrough(), { kind: 'pipe' }, 'admin');
  await pool.admit(new PassThrough(), { kind: 'pipe' }, 'other');
  assert.deepEqual(seen, ['admin:admin:1', 'main:other:2']);
});

test('ConnectionPool resolves 1 and logs the error when a handler throws, and closes the stream', async () => {
  const lines: string[] = [];
  const stream = new PassThrough();
  const pool = new ConnectionPool({ log: quietLog(lines), maxConnections: 1, handlers: { main: async () => { throw new Error('boom'); } } });
  assert.equal(await pool.admit(stream, { kind: 'tcp', address: '127.0.0.1', port: 9, family: 'IPv4' }, 'main'), 1);
  assert.deepEqual(lines, ['err: handler failed conn=1 peer=127.0.0.1:9 error=boom']);
  await new Promise((r) => setImmediate(r));
  assert.equal(stream.destroyed, true);
});

test('ConnectionPool drain waits for queued connections too, and reports false on timeout', async () => {
  let finish!: () => void;
  const pool = new ConnectionPool({
    log: quietLog(),
    maxConnections: 1,
    handlers: { main: () => new Promise<void>((r) => (finish = r)) },
  });
  void pool.admit(new PassThrough(), { kind: 'pipe' }, 'main');
  void pool.admit(new PassThrough(), { kind: 'pipe' }, 'main');
  assert.equal(await pool.drain(50), false);
  const drained = pool.drain(5000);
  finish();
  await new Promise((r) => setImmediate(r));
  assert.equal(pool.queued, 0, 'the queued connection started');
  finish();
  assert.equal(await drained, true);
  assert.equal(pool.active, 0);
});

test('ConnectionPool hands over a paused accepted socket whose bytes reach an on(\'data\') handler that starts late', { timeout: 10_000 }, async (t) => {
  const got: string[] = [];
  const pool = new ConnectionPool({
    log: quietLog(),
    maxConnections: 1,
    handlers: {
      main: async ({ stream }) => {
        // The bytes arrived long before this listener: nothing may have been read into the void.
        await new Promise((r) => setTimeout(r, 100));
        let text = '';
        stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
        await new Promise((r) => stream.once('end', r));
        got.push(text);
        stream.end('ok');
      },
    },
  });
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => pool.accept(socket, 'main'));
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, r));
  t.after(() => server.close());
  const replies = await Promise.all(['first', 'second'].map(async (word) => {
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.end(word);
    let reply = '';
    for await (const chunk of client) reply += String(chunk);
    return reply;
  }));
  assert.deepEqual(replies, ['ok', 'ok']);
  assert.deepEqual(got.sort(), ['first', 'second']);
});

test('ConnectionPool treats a handler that throws before its first await like a rejection', async () => {
  const pool = new ConnectionPool({
    log: quietLog(),
    maxConnections: 0,
    handlers: { main: (() => { throw new Error('sync'); }) as unknown as () => Promise<void> },
  });
  assert.equal(await pool.admit(new PassThrough(), { kind: 'pipe' }, 'main'), 1);
});
