import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameTap } from '../../../src/cache/snoop/frame_tap';
import { encodeMessage } from '../../../src/cache/wire/frame';

// The worked bytes of the protocol page: ADD uid 1 and its response, GET uid 2 and its hit.
const ADD = Buffer.from('001100000000000001000001001d000493e000000008010203040506070868656c6c6f2d73657373696f6e', 'hex');
const ADD_OK = Buffer.from('001100000100000001000001000100', 'hex');
const GET = Buffer.from('00110000000000000200010100080102030405060708', 'hex');
const GET_HIT = Buffer.from('001100000100000002000101000d68656c6c6f2d73657373696f6e', 'hex');

test('FrameTap describes an ADD request with its timeout, id and data', () => {
  const tap = new FrameTap('request');
  assert.deepEqual(tap.push(ADD), [
    'c2s uid=0x00000001 op=ADD frame=1 complete=1 len=29 timeout=300000 id_len=8 id=0102030405060708(8) data=68656c6c6f2d73657373696f6e(13)',
  ]);
});

test('FrameTap names status bytes and shows lookup ids and hit data', () => {
  const tap = new FrameTap('response');
  assert.deepEqual(tap.push(Buffer.concat([ADD_OK, GET_HIT])), [
    's2c uid=0x00000001 op=ADD frame=1 complete=1 len=1 status=0x00(OK)',
    's2c uid=0x00000002 op=GET frame=1 complete=1 len=13 data=68656c6c6f2d73657373696f6e(13)',
  ]);
  assert.deepEqual(new FrameTap('request').push(GET), ['c2s uid=0x00000002 op=GET frame=1 complete=1 len=8 id=0102030405060708(8)']);
  const empty = encodeMessage({ isResponse: true, uid: 9, operation: 3 }, Buffer.alloc(0));
  assert.deepEqual(new FrameTap('response').push(empty), ['s2c uid=0x00000009 op=HAVE frame=1 complete=1 len=0 empty=1']);
});

test('FrameTap prints one line per frame of a multi-frame message and elides long data', () => {
  const payload = Buffer.alloc(3000, 0xab);
  const lines = new FrameTap('response').push(encodeMessage({ isResponse: true, uid: 7, operation: 1 }, payload));
  assert.deepEqual(lines, [
    `s2c uid=0x00000007 op=GET frame=1 complete=0 len=2048 data=${'ab'.repeat(16)}..(2048)`,
    `s2c uid=0x00000007 op=GET frame=2 complete=1 len=952 data=${'ab'.repeat(16)}..(952)`,
  ]);
});

test('FrameTap gives the same lines when the bytes arrive split at every offset', () => {
  const stream = Buffer.concat([ADD, GET, encodeMessage({ isResponse: false, uid: 3, operation: 0 }, Buffer.alloc(5000, 1))]);
  const whole = new FrameTap('request').push(stream);
  assert.equal(whole.length, 5);
  for (let cut = 0; cut <= stream.length; cut += 97) {
    const tap = new FrameTap('request');
    assert.deepEqual([...tap.push(stream.subarray(0, cut)), ...tap.push(stream.subarray(cut))], whole, `cut ${cut}`);
  }
  const bytewise = new FrameTap('request');
  const lines: string[] = [];
  for (const b of ADD) lines.push(...bytewise.push(Buffer.from([b])));
  assert.deepEqual(lines, whole.slice(0, 1));
});

test('FrameTap reports corrupt input once and then stays silent', () => {
  const tap = new FrameTap('request');
  const bad = Buffer.from(GET);
  bad[1] = 0x10; // protocol level 0x0010
  const lines = tap.push(bad);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^c2s corrupt at_byte=1 reason=".*protocol version/);
  assert.equal(tap.broken, true);
  assert.deepEqual(tap.push(GET), []);
});
