// EMFILE: the cache server run under a 64-descriptor limit (prlimit) gets 300 connections at once,
// in several rounds. Connections beyond its descriptors must be served later or closed cleanly
// (no bytes, no garbage); the server must not die, and a client connected before keeps its
// answers. Runs dc_server when it is built, else the engine behind the same activation layer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { CacheClient } from '../../src/cache/client';
import { encodeMessage, Operation } from '../../src/cache/wire/index';
import { startLoadServer } from '../load/cache_load';

test('cache server under a 64-descriptor limit survives 5 bursts of 300 connections and keeps serving its clients', async (t) => {
  const { program } = await startLoadServer(512, { wrapper: ['prlimit', '--nofile=64', '--'] });
  t.after(() => program.stop());
  const good = await CacheClient.connect(program.target);
  t.after(() => good.destroy());
  assert.equal(await good.add('k', 'value', 600_000), 0);
  const get = encodeMessage({ isResponse: false, uid: 9, operation: Operation.GET }, Buffer.from('k'));
  const answer = encodeMessage({ isResponse: true, uid: 9, operation: Operation.GET }, Buffer.from('value'));
  let answered = 0;
  let closedEmpty = 0;
  for (let round = 0; round < 5; round++) {
    const outcomes = await Promise.all(
      Array.from({ length: 300 }, () =>
        new Promise<'answered' | 'closed' | string>((resolve) => {
          const s = net.connect(program.target);
          const got: Buffer[] = [];
          s.on('connect', () => s.write(get));
          s.on('data', (d: Buffer) => {
            got.push(d);
            const all = Buffer.concat(got);
            if (all.length >= answer.length) {
              s.destroy();
              resolve(all.equals(answer) ? 'answered' : `wrong answer ${all.toString('hex')}`);
            }
          });
          s.on('error', () => {});
          s.on('close', () => resolve(got.length === 0 ? 'closed' : `closed after ${Buffer.concat(got).length} bytes`));
          setTimeout(() => {
            s.destroy();
            resolve('no answer and no close within 10 s');
          }, 10_000).unref();
        }),
      ),
    );
    for (const o of outcomes) {
      if (o === 'answered') answered++;
      else if (o === 'closed') closedEmpty++;
      else assert.fail(o);
    }
    assert.ok(program.alive(), `the server died in round ${round}:\n${program.lines.join('\n')}`);
    assert.deepEqual(await good.get('k'), Buffer.from('value'));
  }
  assert.equal(answered + closedEmpty, 1500);
  assert.ok(answered > 0, 'no connection was served');
  // The limit was really hit (otherwise this test proves nothing).
  assert.ok(closedEmpty > 0, `all ${answered} connections were served: the descriptor limit was not reached`);
  // Afterwards a new client is served normally.
  const late = await CacheClient.connect(program.target);
  t.after(() => late.destroy());
  assert.deepEqual(await late.get('k'), Buffer.from('value'));
  const stopped = await program.stop();
  assert.deepEqual(stopped, { code: 0, signal: null });
});
