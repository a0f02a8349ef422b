// Answers that come later ({ kind: 'later' }, a store over the network) keep the pipeline's order:
// a connection fed thousands of pipelined requests (more than MAX_WAITING) whose answers resolve
// in random order writes exactly the bytes the synchronous engine writes; a request that closes
// the connection behind later answers lets those out first and nothing after.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { createCacheEngine, type CacheEngine } from '../../src/cache/engine';
import { MAX_WAITING, serveCacheConnection, type CacheSessionEngine } from '../../src/cache/session';
import { encodeAddPayload, encodeMessage, Operation } from '../../src/cache/wire/index';
import { createLogger } from '../../src/log/index';

function quietEngine(): CacheEngine {
  const log = createLogger('t');
  log.setSinks([]);
  return createCacheEngine({ log });
}

/** The engine's answers, each handed over after a random delay (so they resolve out of order). */
function delayed(engine: CacheEngine, seed = 7): CacheSessionEngine {
  let s = seed;
  const random = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 4;
  return {
    log: engine.log,
    noteConnection: (c) => engine.noteConnection(c),
    answer: (m) => {
      const now = engine.answer(m);
      return { kind: 'later', promise: new Promise((resolve) => setTimeout(() => resolve(now), random())) };
    },
  };
}

/** Serves `input` (then end of input) on a pipe pair and returns everything written back. */
async function serve(engine: CacheSessionEngine, input: Buffer): Promise<Buffer> {
  const inbound = new PassThrough();
  const outbound = new PassThrough();
  const chunks: Buffer[] = [];
  outbound.on('data', (c: Buffer) => chunks.push(c));
  const done = serveCacheConnection({ stream: Duplex.from({ readable: inbound, writable: outbound }), peer: { kind: 'pipe' }, id: 1, listener: 'main' }, engine);
  inbound.end(input);
  await done;
  await new Promise((resolve) => setImmediate(resolve));
  return Buffer.concat(chunks);
}

function requests(n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const id = Buffer.from(`s${i % 97}`);
    const op = i % 4;
    if (op === 0) parts.push(encodeMessage({ isResponse: false, uid: i, operation: Operation.ADD }, encodeAddPayload({ timeoutMs: 60_000, id, data: Buffer.from(`d${i}`) })));
    else parts.push(encodeMessage({ isResponse: false, uid: i, operation: [Operation.GET, Operation.HAVE, Operation.REMOVE][op - 1]! }, id));
  }
  return Buffer.concat(parts);
}

test('session writes later answers in request order when they resolve out of order', async () => {
  const input = requests(MAX_WAITING * 3 + 5);
  const expected = await serve(quietEngine(), input);
  const got = await serve(delayed(quietEngine()), input);
  assert.ok(expected.length > 0);
  assert.equal(got.toString('hex'), expected.toString('hex'));
});

test('session writes the later answers before a request that closes the connection, and nothing after it', async () => {
  const short = encodeMessage({ isResponse: false, uid: 999, operation: Operation.ADD }, Buffer.alloc(7));
  const before = requests(40);
  const input = Buffer.concat([before, short, requests(10)]);
  const expected = await serve(quietEngine(), before);
  const got = await serve(delayed(quietEngine()), input);
  assert.equal(got.toString('hex'), expected.toString('hex'));
});
