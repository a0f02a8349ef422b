// distkit container test helper: one distcache round trip (ADD then GET) with raw protocol
// frames, run by scripts/container-test.sh inside the container with the installed Node.
// Frame: proto_level u32, is_response u8, uid u32, op_class u8, op u8, complete u8, len u16, data.
//   node dc_roundtrip.js ADDR [ADDR2]   ADDR: HOST:PORT or /unix/path
// ADD goes to ADDR, GET to ADDR2 (default ADDR): ADD through dc_client and GET straight from
// dc_server proves the proxy forwarded it. Exits 0 when GET returns the stored bytes.
'use strict';
const net = require('node:net');
const crypto = require('node:crypto');

const PROTO_LEVEL = 0x00110000; // DISTCACHE_PROTO_LEVEL 0x0011, patch 0
const OP_ADD = 0;
const OP_GET = 1;

function frame(uid, op, payload) {
  const h = Buffer.alloc(14);
  h.writeUInt32BE(PROTO_LEVEL, 0);
  h[4] = 0; // is_response
  h.writeUInt32BE(uid, 5);
  h[9] = 0; // op_class
  h[10] = op;
  h[11] = 1; // complete: every payload here fits one frame (<= 2048 bytes)
  h.writeUInt16BE(payload.length, 12);
  return Buffer.concat([h, payload]);
}

function request(addr, uid, op, payload) {
  return new Promise((resolve, reject) => {
    const opts = addr.startsWith('/') ? { path: addr } : { host: addr.split(':')[0], port: Number(addr.split(':')[1]) };
    const sock = net.connect(opts, () => sock.write(frame(uid, op, payload)));
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no response from ${addr} in 10 s`)); }, 10000);
    sock.on('data', (b) => {
      buf = Buffer.concat([buf, b]);
      if (buf.length < 14) return;
      const len = buf.readUInt16BE(12);
      if (buf.length < 14 + len) return;
      clearTimeout(timer);
      sock.end();
      if (buf.readUInt32BE(0) >>> 16 !== 0x0011 || buf[4] !== 1 || buf.readUInt32BE(5) !== uid || buf[10] !== op || buf[11] !== 1) {
        reject(new Error(`bad response header ${buf.subarray(0, 14).toString('hex')}`));
      } else resolve(buf.subarray(14, 14 + len));
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

async function main() {
  const [addr, addr2 = addr] = process.argv.slice(2);
  const id = crypto.randomBytes(16);
  const data = Buffer.from(`distkit-container-session-${id.toString('hex')}`);
  const add = Buffer.alloc(8);
  add.writeUInt32BE(300000, 0); // timeout_ms
  add.writeUInt32BE(id.length, 4); // id_len
  const status = await request(addr, 1, OP_ADD, Buffer.concat([add, id, data]));
  if (status.length !== 1 || status[0] !== 0) throw new Error(`ADD via ${addr} answered ${status.toString('hex')}, want 00`);
  const got = await request(addr2, 2, OP_GET, id);
  if (!got.equals(data)) throw new Error(`GET via ${addr2} answered ${got.toString('hex')}, want the stored data`);
  console.log(`dc_roundtrip: ADD via ${addr}, GET via ${addr2}: ok`);
}

main().catch((e) => { console.error(`dc_roundtrip: ${e.message}`); process.exit(1); });
