import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildAccessList, parseAllowSpec, PRIVATE_NETWORKS, AccessList } from '../../src/compile/access';
import { DistkitError } from '../../src/errors';

function isBadAllow(e: unknown): boolean {
  return e instanceof DistkitError && e.code === 'bad-allow' && e.exitCode === 101;
}

test('AccessList allows an IPv4 peer when it is inside a rule network', async () => {
  const list = await buildAccessList(['10.1.0.0/16', '192.168.7.9']);
  assert.equal(list.allows('10.1.200.3'), true);
  assert.equal(list.allows('10.2.0.1'), false);
  assert.equal(list.allows('192.168.7.9'), true);
  assert.equal(list.allows('192.168.7.10'), false);
});

test('AccessList matches an IPv4-mapped IPv6 peer when an IPv4 rule covers it', async () => {
  const list = await buildAccessList(['127.0.0.1']);
  assert.equal(list.allows('::ffff:127.0.0.1'), true);
  assert.equal(list.allows('::FFFF:7f00:1'), true);
  assert.equal(list.allows('::ffff:127.0.0.2'), false);
  assert.equal(list.allows('::1'), false);
  assert.equal(list.allows('::127.0.0.1'), false);
});

test('AccessList masks host bits when a rule address has them set', async () => {
  const list = await buildAccessList(['10.1.2.3/8', 'fd12:3456::1/16']);
  assert.equal(list.allows('10.200.0.1'), true);
  assert.equal(list.allows('fd12:ffff::9'), true);
  assert.equal(list.allows('fd13::1'), false);
});

test('AccessList matches IPv6 prefixes when the mask is not byte aligned', async () => {
  const list = await buildAccessList(['2001:db8:8000::/33']);
  assert.equal(list.allows('2001:db8:8000::1'), true);
  assert.equal(list.allows('2001:db8:ffff:ffff::1'), true);
  assert.equal(list.allows('2001:db8:7fff::1'), false);
  assert.equal(list.allows('fe80::1%eth0'), false);
});

test('AccessList allows everyone when the rule is 0.0.0.0/0 for IPv4 peers only', async () => {
  const list = await buildAccessList(['0.0.0.0/0']);
  assert.equal(list.allows('203.0.113.5'), true);
  assert.equal(list.allows('::ffff:203.0.113.5'), true);
  assert.equal(list.allows('2001:db8::1'), false);
  assert.equal((await buildAccessList(['::/0'])).allows('2001:db8::1'), true);
});

test('AccessList covers the private ranges when allowPrivate is set', async () => {
  const list = await buildAccessList([], { allowPrivate: true });
  for (const ok of ['10.9.9.9', '172.16.0.1', '172.31.255.255', '192.168.1.1', '127.0.0.1', '::1', 'fe80::1%lo', 'febf::1', 'fc00::1', 'fdff::1', '::ffff:10.0.0.1']) {
    assert.equal(list.allows(ok), true, ok);
  }
  for (const no of ['172.32.0.1', '11.0.0.1', '8.8.8.8', '::2', 'fec0::1', '2001:db8::1', 'not-an-ip', '']) {
    assert.equal(list.allows(no), false, no);
  }
  assert.equal(PRIVATE_NETWORKS.length, 7);
});

test('AccessList denies everything when it has no rules', () => {
  const list = new AccessList([]);
  assert.equal(list.allows('127.0.0.1'), false);
  assert.equal(list.allows('::1'), false);
});

test('buildAccessList resolves a host name to all its addresses when it is given a name', async () => {
  const list = await buildAccessList(['localhost']);
  assert.equal(list.allows('127.0.0.1'), true);
  assert.ok(list.rules.every((r) => r.spec === 'localhost'));
  const many = await buildAccessList(['farm/24'], {
    lookup: async (host) => (host === 'farm' ? [{ address: '192.0.2.10', family: 4 }, { address: '2001:db8::10', family: 6 }] : []),
  });
  assert.equal(many.allows('192.0.2.200'), true);
  assert.equal(many.allows('2001:db8:ffff::1'), true);
  assert.equal(many.allows('2001:ef8::1'), false);
  assert.equal(many.allows('192.0.3.1'), false);
});

test('buildAccessList throws bad-allow when a name does not resolve', async () => {
  await assert.rejects(
    buildAccessList(['ghost'], { lookup: async () => { throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' }); } }),
    (e: unknown) => isBadAllow(e) && /cannot resolve "ghost" \(ENOTFOUND\)/.test((e as Error).message),
  );
  await assert.rejects(buildAccessList(['ghost'], { lookup: async () => [] }), isBadAllow);
});

test('parseAllowSpec throws bad-allow when the spec is malformed', () => {
  for (const bad of ['', '/8', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/x', '::1/129', '1.2.3', '1.2.3.256', '10.0.0.0/-1', 'fe80::1%eth0', ':::1', 'bad_name!', '1.2.3.4/8/8', '::/129', '::/1280', '1.2.3.4/033x', '2001:db8::g', '1.2.3.4.5']) {
    assert.throws(() => parseAllowSpec(bad), isBadAllow, bad);
  }
  assert.deepEqual(parseAllowSpec('buildhost/24'), { host: 'buildhost', bits: '24' });
  const rule = parseAllowSpec('192.168.0.0/16');
  assert.ok('family' in rule && rule.family === 4 && rule.bits === 16 && rule.address === '192.168.0.0');
});

test('AccessList keeps IPv6 rules off plain IPv4 peers when the rule is ::/0 or IPv4-mapped', async () => {
  // node's BlockList alone would let ::/0 admit 1.2.3.4: an IPv4 listener's peers answer to IPv4 rules only.
  const list = await buildAccessList(['::/0', '::ffff:10.0.0.0/104']);
  assert.equal(list.allows('1.2.3.4'), false);
  assert.equal(list.allows('10.0.0.1'), false);
  assert.equal(list.allows('::ffff:10.0.0.1'), true);
  assert.equal(list.allows('::ffff:1.2.3.4'), true);
  assert.equal(list.allows('2001:db8::1'), true);
});

test('AccessList matches exactly one address when the mask is /32 or /128', async () => {
  const list = await buildAccessList(['192.0.2.7/32', '2001:db8::7/128']);
  assert.equal(list.allows('192.0.2.7'), true);
  assert.equal(list.allows('192.0.2.6'), false);
  assert.equal(list.allows('::ffff:192.0.2.7'), true);
  assert.equal(list.allows('2001:db8::7'), true);
  assert.equal(list.allows('2001:0db8:0:0:0:0:0:7'), true);
  assert.equal(list.allows('2001:db8::6'), false);
  assert.equal(list.allows('64:ff9b::192.0.2.7'), false);
});
