// The snoop relay in this process, through snoopHandler (the handler dc_snoop runs), in front of
// the cache engine: answers arrive unchanged and every frame is printed once, in order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { CacheClient } from '../../../src/cache/client';
import { snoopHandler } from '../../../src/cache/snoop/relay';
import { Status } from '../../../src/cache/wire/index';
import { createLogger } from '../../../src/log/index';
import { startCacheServer } from '../cache_server';

test('snoop relay passes a client through to the server and prints each frame when served by snoopHandler', async (t) => {
  const server = await startCacheServer({});
  t.after(() => server.close());
  const log = createLogger('dc_snoop-test');
  log.setSinks([]);
  const printed: string[] = [];
  const target = server.target as { host: string; port: number };
  const serve = snoopHandler({ target: { kind: 'tcp', host: target.host, port: target.port }, log, print: (line) => printed.push(line) });
  const handlers: Array<Promise<unknown>> = [];
  const snoop = net.createServer({ allowHalfOpen: true }, (socket) => {
    handlers.push(serve({ stream: socket, peer: { kind: 'tcp', address: socket.remoteAddress!, port: socket.remotePort!, family: 'IPv4' }, id: 7, listener: 'main' }).finally(() => socket.destroy()));
  });
  await new Promise<void>((resolve) => snoop.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => snoop.close(() => resolve())));

  const client = await CacheClient.connect({ host: '127.0.0.1', port: (snoop.address() as net.AddressInfo).port });
  assert.equal(await client.add('id', 'data', 60_000), Status.OK);
  assert.deepEqual(await client.get('id'), Buffer.from('data'));
  await client.close();
  await Promise.all(handlers);

  const frames = printed.map((line) => line.replace(/^conn=7 /, '')).filter((line) => /^(c2s|s2c) /.test(line));
  assert.deepEqual(
    frames.map((line) => line.split(' ').slice(0, 3).join(' ')),
    ['c2s uid=0x00000001 op=ADD', 's2c uid=0x00000001 op=ADD', 'c2s uid=0x00000002 op=GET', 's2c uid=0x00000002 op=GET'],
  );
  assert.match(frames[3]!, /len=4 data=64617461\(4\)$/);
  assert.match(printed[0]!, /^conn=7 open peer=127\.0\.0\.1:\d+ server=/);
  assert.match(printed.at(-1)!, /^conn=7 close c2s_bytes=\d+ s2c_bytes=\d+$/);
});
