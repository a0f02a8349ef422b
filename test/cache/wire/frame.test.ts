import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeFrame,
  decodeMessage,
  encodeAddPayload,
  encodeMessage,
  frameCount,
  FRAME_HEADER_SIZE,
  MAX_FRAME_DATA,
  MAX_PAYLOAD,
  MAX_READER_BUFFER,
  MessageReader,
  Operation,
} from '../../../src/cache/wire/index';
import { byteByByte, everySplit, feed, summarisePayload } from './split_feed';
import { seededRandom } from '../random';

function patterned(length: number, seed = 7): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

test('encodeMessage splits payloads into max(1, ceil(len/2048)) frames with the last marked complete', () => {
  for (const [length, frames] of [[0, 1], [1, 1], [2047, 1], [2048, 1], [2049, 2], [4096, 2], [4097, 3], [32767, 16], [32768, 16]] as const) {
    assert.equal(frameCount(length), frames);
    const bytes = encodeMessage({ isResponse: false, uid: 9, operation: Operation.GET }, patterned(length));
    assert.equal(bytes.length, frames * FRAME_HEADER_SIZE + length);
    let at = 0;
    for (let i = 0; i < frames; i++) {
      const f = decodeFrame(bytes, 'request', { offset: at, context: { index: i, uid: 9, operation: 1 } });
      assert.equal(f.kind, 'ok');
      if (f.kind !== 'ok') return;
      assert.equal(f.value.complete, i === frames - 1, `length ${length} frame ${i}`);
      assert.equal(f.value.data.length, i < frames - 1 ? MAX_FRAME_DATA : length - MAX_FRAME_DATA * (frames - 1));
      at = f.next;
    }
    assert.equal(at, bytes.length);
  }
  assert.throws(() => encodeMessage({ isResponse: true, uid: 1, operation: 1 }, Buffer.alloc(MAX_PAYLOAD + 1)), RangeError);
});

test('messages round-trip at every payload size from 4040 to 4100 bytes, whole and split around the frame seams', () => {
  for (let length = 4040; length <= 4100; length++) {
    const payload = patterned(length, length);
    const bytes = encodeMessage({ isResponse: true, uid: 0xfffffffe, operation: Operation.GET }, payload);
    const whole = decodeMessage(bytes, 'response');
    assert.equal(whole.kind, 'ok');
    if (whole.kind !== 'ok') return;
    assert.equal(whole.next, bytes.length);
    assert.deepEqual(whole.value.payload, payload, `length ${length}`);
    const summary = feed([bytes], 'response');
    assert.equal(summary.end, 'clean');
    // Every offset within 24 bytes of a frame boundary (the C off-by-4 zone) and of the end.
    for (const seam of [0, 2062, 4124, bytes.length]) {
      for (let at = Math.max(0, seam - 24); at <= Math.min(bytes.length, seam + 24); at++) {
        assert.deepEqual(feed([bytes.subarray(0, at), bytes.subarray(at)], 'response'), summary, `length ${length} at ${at}`);
      }
    }
  }
});

test('ADD messages at the maxima round-trip split at every offset and byte by byte', () => {
  for (const idLength of [1, 64]) {
    const id = patterned(idLength, 3);
    const data = patterned(MAX_PAYLOAD - 8 - idLength, 5);
    const payload = encodeAddPayload({ timeoutMs: 604_800_000, id, data });
    assert.equal(payload.length, MAX_PAYLOAD);
    const bytes = encodeMessage({ isResponse: false, uid: 77, operation: Operation.ADD }, payload);
    const whole = feed([bytes], 'request');
    assert.equal(whole.end, 'clean');
    assert.equal(whole.messages.length, 1);
    assert.equal(whole.messages[0]!.frames, 16);
    assert.equal(whole.messages[0]!.payload, summarisePayload(payload));
    for (const [at, split] of everySplit(bytes, 'request')) assert.deepEqual(split, whole, `id ${idLength} at ${at}`);
    assert.deepEqual(feed(byteByByte(bytes), 'request'), whole);
  }
});

test('pipelined messages come out in order when fed in arbitrary chunks', () => {
  const parts: Buffer[] = [];
  for (let i = 0; i < 40; i++) parts.push(encodeMessage({ isResponse: false, uid: i, operation: (i % 4) as Operation }, patterned(i * 523, i)));
  const stream = Buffer.concat(parts);
  const whole = feed([stream], 'request');
  assert.equal(whole.messages.length, 40);
  assert.deepEqual(whole.messages.map((m) => m.uid), [...Array(40).keys()]);
  const rand = seededRandom(12345);
  for (let round = 0; round < 50; round++) {
    const pieces: Buffer[] = [];
    for (let at = 0; at < stream.length; ) {
      const size = 1 + rand(rand(3) === 0 ? 30 : 5000);
      pieces.push(Buffer.from(stream.subarray(at, at + size)));
      at += size;
    }
    assert.deepEqual(feed(pieces, 'request'), whole, `round ${round}`);
  }
});

// A valid two-frame request and the byte offsets whose corruption must be caught right there.
const twoFrames = encodeMessage({ isResponse: false, uid: 0x01020304, operation: Operation.ADD }, patterned(3000));
const second = FRAME_HEADER_SIZE + MAX_FRAME_DATA;
const faults: Array<[string, number, number, RegExp]> = [
  ['proto high byte', 0, 0x01, /wrong protocol version/],
  ['proto low byte', 1, 0x10, /wrong protocol version/],
  ['is_response', 4, 1, /is_response/],
  ['is_response 2', 4, 2, /is_response/],
  ['op_class', 9, 1, /op_class/],
  ['operation 4', 10, 4, /operation 0x04/],
  ['complete 2', 11, 2, /complete 0x02/],
  ['data_len high byte 9', 12, 9, /data_len above 2048/],
  ['data_len 2049', 13, 1, /data_len 2049/],
  ['short non-final frame', 12, 7, /non-final frame shorter/],
  ['continuation proto', second + 1, 0x12, /wrong protocol version/],
  ['continuation uid byte 0', second + 5, 9, /different uid/],
  ['continuation uid byte 3', second + 8, 9, /different uid/],
  ['continuation operation', second + 10, 1, /operation 1, first had 0/],
];

for (const [name, offset, value, reason] of faults) {
  test(`decodeMessage is corrupt at the first bad byte when the ${name} is wrong`, () => {
    const bytes = Buffer.from(twoFrames);
    bytes[offset] = value;
    for (let end = 0; end <= offset; end++) {
      assert.equal(decodeMessage(bytes.subarray(0, end), 'request').kind, 'incomplete', `prefix ${end}`);
    }
    const result = decodeMessage(bytes.subarray(0, offset + 1), 'request');
    assert.equal(result.kind, 'corrupt');
    if (result.kind === 'corrupt') {
      assert.equal(result.offset, offset);
      assert.match(result.reason, reason);
    }
    assert.match(feed(byteByByte(bytes), 'request').end, new RegExp(`^corrupt@${offset}: `));
  });
}

test('decodeMessage accepts any patch level and rejects a response in a request stream', () => {
  const bytes = Buffer.from(encodeMessage({ isResponse: false, uid: 1, operation: Operation.HAVE }, Buffer.from('id')));
  bytes.writeUInt16BE(0xabcd, 2);
  assert.equal(decodeMessage(bytes, 'request').kind, 'ok');
  const frame = decodeFrame(bytes, 'request');
  assert.equal(frame.kind === 'ok' && frame.value.protoLevel, 0x0011abcd);
  const r = decodeMessage(bytes, 'response');
  assert.equal(r.kind === 'corrupt' && r.offset, 4);
});

test('MessageReader stays corrupt after a framing error and reports stream offsets across chunks', () => {
  const good = encodeMessage({ isResponse: false, uid: 5, operation: Operation.GET }, Buffer.from('abc'));
  const reader = new MessageReader('request');
  reader.push(good);
  reader.push(Buffer.from([0x00, 0x12]));
  assert.equal(reader.next().kind, 'ok');
  const bad = reader.next();
  assert.deepEqual(bad.kind === 'corrupt' && bad.offset, good.length + 1);
  reader.push(good);
  assert.equal(reader.next().kind, 'corrupt');
});

test('MessageReader parses a range of a shared buffer in place and counts stream offsets from the range', () => {
  // As the socket pump hands reads over: arena[start, end), other sockets' bytes around it.
  const first = encodeMessage({ isResponse: false, uid: 1, operation: Operation.HAVE }, Buffer.from('one'));
  const second = encodeMessage({ isResponse: false, uid: 2, operation: Operation.GET }, patterned(3000));
  const arena = Buffer.concat([Buffer.from([0x11, 0x22]), first, second.subarray(0, 20), Buffer.from([0x33])]);
  const reader = new MessageReader('request');
  reader.push(arena, 2, 2 + first.length + 20);
  const one = reader.next();
  assert.ok(one.kind === 'ok' && one.value.uid === 1 && one.value.payload.toString() === 'one' && one.value.frames === 1);
  assert.equal(reader.next().kind, 'incomplete');
  assert.equal(reader.consumed, first.length);
  assert.equal(reader.buffered, 20);
  reader.detach();
  arena.fill(0xee); // the arena is reused: the reader must hold its own copy of the tail
  reader.push(Buffer.concat([Buffer.from([0x44]), second.subarray(20)]), 1);
  const two = reader.next();
  assert.ok(two.kind === 'ok' && two.value.uid === 2 && two.value.frames === 2);
  assert.deepEqual(two.value.payload, patterned(3000));
  assert.equal(reader.consumed, first.length + second.length);
  // A corrupt byte in a later range is reported at its stream offset, not its buffer offset.
  const bad = Buffer.from([0x55, 0x55, 0x00, 0x12]);
  reader.push(bad, 2);
  const corrupt = reader.next();
  assert.deepEqual(corrupt.kind === 'corrupt' && corrupt.offset, first.length + second.length + 1);
});

test('decoders never throw, loop or overrun on random bytes and mutated messages', () => {
  const rand = seededRandom(99);
  for (let round = 0; round < 3000; round++) {
    let bytes: Buffer;
    if (round % 2 === 0) {
      bytes = Buffer.allocUnsafe(rand(200));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rand(256);
      if (bytes.length > 2) bytes[0] = 0, bytes[1] = 0x11;
    } else {
      bytes = Buffer.from(encodeMessage({ isResponse: false, uid: rand(1000), operation: rand(4) as Operation }, patterned(rand(5000))));
      for (let k = rand(3); k >= 0; k--) bytes[rand(bytes.length)] = rand(256);
    }
    const reader = new MessageReader('request');
    reader.push(bytes);
    let guard = 0;
    for (;;) {
      const r = reader.next();
      assert.ok(++guard <= bytes.length + 1, 'reader loops without consuming input');
      if (r.kind !== 'ok') break;
      assert.ok(r.value.payload.length <= MAX_PAYLOAD);
    }
  }
});

test('MessageReader refuses to hold more than MAX_READER_BUFFER unparsed bytes', () => {
  const reader = new MessageReader('request');
  const chunk = encodeMessage({ isResponse: false, uid: 1, operation: Operation.GET }, Buffer.alloc(2000));
  let pushed = 0;
  assert.throws(() => {
    for (;;) {
      reader.push(chunk);
      pushed += chunk.length;
    }
  }, /would hold \d+ unparsed bytes, above 4194304/);
  assert.ok(pushed <= MAX_READER_BUFFER && pushed > MAX_READER_BUFFER - chunk.length);
  // Everything pushed is still there to be read.
  let n = 0;
  while (reader.next().kind === 'ok') n++;
  assert.equal(n, pushed / chunk.length);
});
