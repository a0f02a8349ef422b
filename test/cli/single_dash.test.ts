import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSingleDash, parseDecimal, invalidArgument, printOptionError } from '../../src/cli/single_dash';

const spec = {
  strings: ['listen', 'sessions', 'server'],
  booleans: ['daemon', 'killable'],
  repeatable: ['listen'],
  aliases: { connect: 'server' },
};

test('parseSingleDash reads single-dash words that minimist alone would split into letters', () => {
  const r = parseSingleDash(['-listen', 'IP:9001', '-sessions', '100', '-daemon'], spec);
  assert.deepEqual(r, {
    kind: 'ok',
    values: { listen: ['IP:9001'], sessions: '100', server: undefined, daemon: true, killable: false },
  });
});

test('parseSingleDash takes the next word as the argument even when it starts with a dash', () => {
  const r = parseSingleDash(['-server', '-daemon'], spec);
  assert.equal(r.kind, 'ok');
  assert.equal(r.kind === 'ok' && r.values.server, '-daemon');
  assert.equal(r.kind === 'ok' && r.values.daemon, false);
});

test('parseSingleDash keeps every value of a repeatable option and the last of the others', () => {
  const r = parseSingleDash(['-listen', 'IP:1', '--listen', 'UNIX:/x', '-sessions', '1', '-sessions', '2'], spec);
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  assert.deepEqual(r.values.listen, ['IP:1', 'UNIX:/x']);
  assert.equal(r.values.sessions, '2');
});

test('parseSingleDash maps aliases to their canonical option', () => {
  const r = parseSingleDash(['-connect', 'IP:127.0.0.1:1'], spec);
  assert.equal(r.kind === 'ok' && r.values.server, 'IP:127.0.0.1:1');
});

test('parseSingleDash reports unknown words with the original message', () => {
  assert.deepEqual(parseSingleDash(['-bogus'], spec), { kind: 'error', message: 'Error, "-bogus" not recognised' });
  assert.deepEqual(parseSingleDash(['-l', 'x'], spec), { kind: 'error', message: 'Error, "-l" not recognised' });
  assert.deepEqual(parseSingleDash(['stray'], spec), { kind: 'error', message: 'Error, "stray" not recognised' });
  assert.deepEqual(parseSingleDash(['-Listen', 'x'], spec), { kind: 'error', message: 'Error, "-Listen" not recognised' });
});

test('parseSingleDash reports a missing argument with the original message', () => {
  assert.deepEqual(parseSingleDash(['-daemon', '-listen'], spec), { kind: 'error', message: 'Error, -listen requires an argument' });
});

test('parseSingleDash answers help for -h, -help and -? wherever they appear', () => {
  for (const h of ['-h', '-help', '-?']) assert.deepEqual(parseSingleDash(['-daemon', h, '-bogus'], spec), { kind: 'help' });
  // Like the original, an error before the help word wins.
  assert.equal(parseSingleDash(['-bogus', '-h'], spec).kind, 'error');
});

test('parseDecimal accepts plain decimal numbers within the range only', () => {
  assert.equal(parseDecimal('512', 64, 1000), 512);
  assert.equal(parseDecimal('64', 64, 1000), 64);
  for (const t of ['63', '1001', '-1', '+5', '0x40', '', '1e3', ' 100', '100 ']) assert.equal(parseDecimal(t, 64, 1000), undefined, t);
});

test('printOptionError writes the message and then the usage', () => {
  let out = '';
  printOptionError(invalidArgument('sessions'), '\nUsage: x\n', (t) => (out += t));
  assert.equal(out, 'Error, -sessions given an invalid argument\n\nUsage: x\n');
});
