import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import fs from 'node:fs';
import { adoptSocket, pumpedSockets, QUEUED, WRITTEN, type PumpHandler, type PumpedSocket } from '../../src/activation/socket_pump';
import { Recorder } from './pump_recorder';

/** A loopback pair: the accepted side adopted by the pump, the client side a plain net.Socket. */
async function pumpedPair(t: { after(fn: () => void): void }, handler?: PumpHandler): Promise<{ client: net.Socket; pumped: PumpedSocket; owner: net.Socket; recorder: Recorder }> {
  const recorder = new Recorder();
  const accepted = new Promise<net.Socket>((resolve) => {
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
      server.close();
      resolve(socket);
    });
    server.listen(0, '127.0.0.1', () => {
      const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
      clientReady(client);
    });
  });
  let clientReady!: (c: net.Socket) => void;
  const client = await new Promise<net.Socket>((resolve) => (clientReady = resolve));
  const owner = await accepted;
  const pumped = adoptSocket(owner, handler ?? recorder, { noDelay: true });
  assert.ok(pumped !== undefined, 'an accepted socket is adopted');
  t.after(() => {
    client.destroy();
    owner.destroy();
  });
  return { client, pumped, owner, recorder };
}

/** Writes until the pump queues (the peer does not read); the bytes written, the queued included. */
function fillUntilQueued(pumped: PumpedSocket): number {
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sent = 0;
  let result: number | string = WRITTEN;
  while (result === WRITTEN) {
    result = pumped.write(chunk);
    sent += chunk.length;
    assert.ok(sent < 256 * 1024 * 1024, 'the socket never filled');
  }
  assert.equal(result, QUEUED);
  return sent;
}

test('socket pump delivers bytes and sends answers when a peer talks over loopback', async (t) => {
  const { client, pumped, recorder } = await pumpedPair(t);
  client.write('hello');
  await recorder.until(() => recorder.data.length === 5);
  assert.equal(recorder.data.toString(), 'hello');
  const got = new Promise<Buffer>((resolve) => client.once('data', resolve));
  assert.equal(pumped.write(Buffer.from('world!'), 5), WRITTEN);
  assert.equal((await got).toString(), 'world');
});

test('socket pump queues what the kernel does not take and drains it when the peer does not read', async (t) => {
  const { client, pumped, recorder } = await pumpedPair(t);
  client.pause();
  const sent = fillUntilQueued(pumped);
  // Reading stops while bytes are queued: a byte from the peer waits in the kernel.
  client.write('x');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(recorder.data.length, 0, 'read while answers were queued');
  let received = 0;
  client.on('data', (d: Buffer) => (received += d.length));
  client.resume();
  await recorder.until(() => recorder.events.includes('drain'));
  await recorder.until(() => recorder.data.length === 1);
  while (received < sent) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(received, sent, 'every queued byte arrived');
});

test('socket pump reports the peer end and closes after end() when the peer half-closes', async (t) => {
  const { client, pumped, owner, recorder } = await pumpedPair(t);
  client.end('last');
  await recorder.until(() => recorder.events.includes('end'));
  assert.equal(recorder.data.toString(), 'last');
  const closed = new Promise<void>((resolve) => client.once('end', resolve));
  assert.equal(pumped.write(Buffer.from('bye')), WRITTEN);
  assert.equal(pumped.end(), true, 'closed at once: the peer had ended');
  // The pump closed its own fd; the owner holds the socket until the activation layer ends it.
  owner.end();
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  await closed;
  assert.equal(Buffer.concat(got).toString(), 'bye');
});

test('socket pump sends FIN after end() and reports closed once the peer ends too', async (t) => {
  const { client, pumped, recorder } = await pumpedPair(t);
  client.on('data', () => undefined);
  const fin = new Promise<void>((resolve) => client.once('end', resolve));
  assert.equal(pumped.end(), false, 'waits for the peer');
  await fin;
  client.end();
  await recorder.until(() => recorder.events.includes('closed'));
});

test('socket pump reports an error when the peer resets the connection', async (t) => {
  const { client, recorder } = await pumpedPair(t);
  client.write('part');
  await recorder.until(() => recorder.data.length === 4);
  client.resetAndDestroy();
  await recorder.until(() => recorder.events.some((e) => e.startsWith('error')));
  assert.deepEqual(recorder.events.at(-1), 'error ECONNRESET');
});

test('socket pump closes the socket and says gone when its owner is destroyed', async (t) => {
  const { client, owner, recorder } = await pumpedPair(t);
  const end = new Promise<void>((resolve) => client.once('end', () => resolve()));
  client.resume();
  owner.destroy();
  await recorder.until(() => recorder.events.includes('gone'));
  await end;
});

test('socket pump leaves a stream that is not a socket to its caller', () => {
  assert.equal(adoptSocket(new PassThrough(), new Recorder(), { noDelay: false }), undefined);
});

test('socket pump answers and closes every socket when hundreds connect for one request each at once', async () => {
  // More sockets ready in one turn than the pump takes from its epoll set per batch (256), each
  // closed by the pump after its answer: none may be lost, and none may leave an fd behind.
  const COUNT = 300;
  const fdsBefore = fs.readdirSync('/proc/self/fd').length;
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (owner) => {
    const handler: PumpHandler = {
      onData: (arena, start, end) => void pumped!.write(Buffer.from(`re:${arena.toString('utf8', start, end)}`)),
      onEnd: () => {
        if (pumped!.end()) owner.destroy();
      },
      onDrain: () => undefined,
      onError: () => owner.destroy(),
      onClosed: () => owner.destroy(),
      onGone: () => undefined,
    };
    const pumped = adoptSocket(owner, handler, { noDelay: true });
    assert.ok(pumped !== undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const clients = await Promise.all(
    Array.from({ length: COUNT }, () => new Promise<net.Socket>((resolve) => {
      const client = net.connect({ port, host: '127.0.0.1' }, () => resolve(client));
    })),
  );
  const answers = await Promise.all(
    clients.map((client, i) => new Promise<string>((resolve, reject) => {
      let got = '';
      client.on('data', (d: Buffer) => (got += d.toString()));
      client.on('end', () => resolve(got));
      client.on('error', reject);
      client.end(String(i));
    })),
  );
  assert.deepEqual(answers, clients.map((_, i) => `re:${i}`));
  for (const client of clients) client.destroy();
  server.close();
  while (pumpedSockets() > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  // The owners close on their own turn; give them a bounded while.
  for (let i = 0; i < 200 && fs.readdirSync('/proc/self/fd').length > fdsBefore; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(fs.readdirSync('/proc/self/fd').length <= fdsBefore, 'an fd was left open');
});

test('socket pump answers, drains and reports a reset when a connection reads many times and moves to its own poll', async (t) => {
  // From its second read a socket leaves the pump's epoll set for a poll handle of its own
  // (socket_pump.c): everything must work the same after the move.
  const { client, pumped, recorder } = await pumpedPair(t);
  for (let i = 0; i < 5; i++) {
    const got = new Promise<Buffer>((resolve) => client.once('data', resolve));
    client.write(`q${i}`);
    await recorder.until(() => recorder.data.toString().endsWith(`q${i}`));
    assert.equal(pumped.write(Buffer.from(`a${i}`)), WRITTEN);
    assert.equal((await got).toString(), `a${i}`);
  }
  client.pause();
  const sent = fillUntilQueued(pumped);
  let received = 0;
  client.on('data', (d: Buffer) => (received += d.length));
  client.resume();
  await recorder.until(() => recorder.events.includes('drain'));
  while (received < sent) await new Promise((resolve) => setTimeout(resolve, 5));
  client.resetAndDestroy();
  await recorder.until(() => recorder.events.some((e) => e.startsWith('error')));
  assert.equal(recorder.events.at(-1), 'error ECONNRESET');
});

test('socket pump sends what a handler appended before its FIN when the handler appends and ends within the callback', async (t) => {
  const events: string[] = [];
  let pumped: PumpedSocket | undefined;
  const handler: PumpHandler = {
    onData(arena, start, end) {
      pumped!.append(Buffer.from(`re:${arena.toString('utf8', start, end)}`));
      pumped!.append(Buffer.from(';'));
      pumped!.commit(); // within the callback: sent when it returns, with every other socket's
      events.push(`end() ${pumped!.end()}`);
    },
    onEnd: () => events.push('end'),
    onDrain: () => events.push('drain'),
    onError: (code) => events.push(`error ${code}`),
    onClosed: () => events.push('closed'),
    onGone: () => events.push('gone'),
  };
  const pair = await pumpedPair(t, handler);
  pumped = pair.pumped;
  const { client } = pair;
  const received: Buffer[] = [];
  client.on('data', (d: Buffer) => received.push(d));
  const fin = new Promise<void>((resolve) => client.once('end', resolve));
  client.write('ping');
  await fin;
  assert.equal(Buffer.concat(received).toString(), 're:ping;', 'the appended bytes, in order, then the FIN');
  assert.deepEqual(events, ['end() false'], 'end() waits for the peer');
  client.end();
  while (!events.includes('closed')) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(events, ['end() false', 'closed']);
});

test('socket pump sends appended bytes at commit() when called outside its callback', async (t) => {
  const { client, pumped } = await pumpedPair(t);
  const received: Buffer[] = [];
  client.on('data', (d: Buffer) => received.push(d));
  pumped.append(Buffer.from('late '));
  pumped.append(Buffer.from('answer'));
  pumped.commit();
  while (Buffer.concat(received).length < 11) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(Buffer.concat(received).toString(), 'late answer');
});
