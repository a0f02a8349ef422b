// distkit container test helper: one distcache round trip (ADD then GET) through the project's
// own client library as installed (PREFIX/lib/distkit/dist/src/cache/client.js), run by
// scripts/container-test.sh inside the container with the installed Node.
//   node dc_roundtrip.js ADDR [ADDR2]   ADDR: HOST:PORT or /unix/path
// ADD goes to ADDR, GET to ADDR2 (default ADDR): ADD through dc_client and GET straight from
// dc_server proves the proxy forwarded it. Exits 0 when GET returns the stored bytes.
//   node dc_roundtrip.js --store TAG N ADDR    ADDs N sessions named after TAG (all must be OK)
//   node dc_roundtrip.js --expect TAG N ADDR   GETs them back: exits 0 only if all N are there
// (sessions kept across a restart of dc_server: --store, restart, --expect).
'use strict';
const crypto = require('node:crypto');

const lib = process.env.DISTKIT_LIB || '/usr/local/lib/distkit';
const { CacheClient } = require(`${lib}/dist/src/cache/client.js`);

function target(addr) {
  if (addr.startsWith('/')) return { path: addr };
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

function kept(tag, i) {
  const id = crypto.createHash('sha256').update(`${tag}:${i}`).digest().subarray(0, 16);
  return { id, data: Buffer.from(`distkit-kept-${tag}-${i}`) };
}

async function storeOrExpect(mode, tag, n, addr) {
  const client = await CacheClient.connect(target(addr), { connectTimeoutMs: 10000 });
  const sessions = Array.from({ length: n }, (_, i) => kept(tag, i));
  if (mode === '--store') {
    const statuses = await Promise.all(sessions.map((s) => client.add(s.id, s.data, 300000)));
    await client.close();
    const ok = statuses.filter((s) => s === 0).length;
    if (ok !== n) throw new Error(`--store ${tag}: ${ok} of ${n} ADDs answered OK`);
    console.log(`dc_roundtrip: stored ${n} sessions "${tag}" via ${addr}`);
    return;
  }
  const got = await Promise.all(sessions.map((s) => client.get(s.id)));
  await client.close();
  const present = got.filter((g, i) => g !== null && g.equals(sessions[i].data)).length;
  console.log(`dc_roundtrip: ${present} of ${n} sessions "${tag}" present via ${addr}`);
  if (present !== n) throw new Error(`--expect ${tag}: ${n - present} of ${n} sessions missing`);
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--store' || args[0] === '--expect') return storeOrExpect(args[0], args[1], Number(args[2]), args[3]);
  const [addr, addr2 = addr] = args;
  const id = crypto.randomBytes(16);
  const data = Buffer.from(`distkit-container-session-${id.toString('hex')}`);
  const writer = await CacheClient.connect(target(addr), { connectTimeoutMs: 10000 });
  const status = await writer.add(id, data, 300000);
  await writer.close();
  if (status !== 0) throw new Error(`ADD via ${addr} answered status ${status}, want 0 (OK)`);
  const reader = await CacheClient.connect(target(addr2), { connectTimeoutMs: 10000 });
  const got = await reader.get(id);
  await reader.close();
  if (got === null || !got.equals(data)) throw new Error(`GET via ${addr2} answered ${got === null ? 'a miss' : got.toString('hex')}, want the stored data`);
  console.log(`dc_roundtrip: ADD via ${addr}, GET via ${addr2}: ok`);
}

const timer = setTimeout(() => { console.error('dc_roundtrip: no answer in 20 s'); process.exit(1); }, 20000);
main().then(() => clearTimeout(timer), (e) => { console.error(`dc_roundtrip: ${e.message}`); process.exit(1); });
