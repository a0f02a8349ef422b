// The yardstick for the cache benchmark: a distcache "server" that parses request messages with
// our codec and answers at once without any store (ADD/REMOVE/HAVE: 0x00, GET: a fixed payload of
// the benchmark's data size). Whatever dc_server costs beyond this is the store and the session
// logic. Run: node dist/scripts/bench/minimal_responder.js <listen path or port> <get-size>

import net from 'node:net';
import fs from 'node:fs';
import { encodeMessage, MessageReader, Operation } from '../../src/cache/wire/index';

const [where = '0', sizeText = '150'] = process.argv.slice(2);
const getPayload = Buffer.alloc(Number(sizeText), 0x5a);
const ok = Buffer.from([0]);

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const reader = new MessageReader('request');
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    const out: Buffer[] = [];
    for (;;) {
      const r = reader.next();
      if (r.kind === 'incomplete') break;
      if (r.kind === 'corrupt') {
        socket.destroy();
        return;
      }
      const m = r.value;
      out.push(encodeMessage({ isResponse: true, uid: m.uid, operation: m.operation }, m.operation === Operation.GET ? getPayload : ok));
    }
    if (out.length > 0) socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  });
  socket.on('error', () => socket.destroy());
});

if (/^\d+$/.test(where)) {
  server.listen(Number(where), '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`));
} else {
  fs.rmSync(where, { force: true });
  server.listen(where, () => process.stdout.write(`listening ${where}\n`));
}
process.on('SIGTERM', () => process.exit(0));
