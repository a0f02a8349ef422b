import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeAddPayload,
  decodeMessage,
  encodeMessage,
  Operation,
  Status,
  FRAME_HEADER_SIZE,
  MAX_FRAME_DATA,
} from '../../../src/cache/wire/index';
import { loadGoldenVectors } from '../golden_vectors';
import { byteByByte, everySplit, feed } from './split_feed';

const vectors = loadGoldenVectors();

test('golden vectors load with every step present', () => {
  assert.equal(vectors.length, 12);
  assert.ok(vectors.every((v) => v.steps.length > 0));
});

for (const vector of vectors) {
  test(`golden request bytes decode when fed whole, split at every offset and byte by byte: ${vector.name}`, () => {
    for (const step of vector.steps) {
      const whole = feed([step.request], 'request');
      if (step.closedByServer) {
        // Either a framing error, or the one message-level fault: an ADD payload under 8 bytes.
        const shortAdd =
          whole.messages.length === 1 && whole.messages[0]!.operation === Operation.ADD &&
          decodeAddPayload(Buffer.from(whole.messages[0]!.payload, 'hex')).kind === 'short';
        assert.ok(whole.end.startsWith('corrupt') || shortAdd, `${step.step}: ${whole.end}`);
      } else {
        assert.equal(whole.end, 'clean', step.step);
        assert.equal(whole.messages.length, 1, step.step);
      }
      // Splitting the 33007-byte vector at every offset is ~33k decodes of 16 headers: cheap.
      for (const [at, split] of everySplit(step.request, 'request')) assert.deepEqual(split, whole, `${step.step} split at ${at}`);
      assert.deepEqual(feed(byteByByte(step.request), 'request'), whole, `${step.step} byte by byte`);
    }
  });
}

test('golden responses re-encode byte for byte from their decoded fields', () => {
  let count = 0;
  for (const vector of vectors) {
    for (const step of vector.steps) {
      if (step.response.length === 0) continue;
      const decoded = decodeMessage(step.response, 'response');
      assert.equal(decoded.kind, 'ok', step.step);
      if (decoded.kind !== 'ok') continue;
      assert.equal(decoded.next, step.response.length);
      const { uid, operation, payload } = decoded.value;
      assert.deepEqual(encodeMessage({ isResponse: true, uid, operation }, payload), step.response, step.step);
      // The response echoes the request's uid and operation.
      const request = decodeMessage(step.request, 'request');
      assert.equal(request.kind, 'ok');
      if (request.kind === 'ok') {
        assert.equal(uid, request.value.uid);
        assert.equal(operation, request.value.operation);
      }
      count++;
    }
  }
  assert.equal(count, 88);
});

test('golden requests with patch level 0 re-encode byte for byte', () => {
  let count = 0;
  for (const vector of vectors) {
    for (const step of vector.steps) {
      const decoded = decodeMessage(step.request, 'request');
      if (decoded.kind !== 'ok' || step.request.readUInt16BE(2) !== 0) continue;
      const { uid, operation, payload } = decoded.value;
      assert.deepEqual(encodeMessage({ isResponse: false, uid, operation }, payload), step.request.subarray(0, decoded.next), step.step);
      count++;
    }
  }
  assert.equal(count, 88);
});

test('golden ADD validation requests get the captured status from decodeAddPayload', () => {
  const vector = vectors.find((v) => v.name === 'ADD validation errors')!;
  for (const step of vector.steps) {
    const decoded = decodeMessage(step.request, 'request');
    assert.equal(decoded.kind, 'ok');
    if (decoded.kind !== 'ok' || decoded.value.operation !== Operation.ADD) continue;
    const expected = step.response[step.response.length - 1];
    const add = decodeAddPayload(decoded.value.payload);
    if (expected === Status.OK) assert.equal(add.kind, 'ok', step.step);
    else assert.equal(add.kind === 'rejected' ? add.status : add.kind, expected, step.step);
  }
});

test('golden 17-frame message is corrupt at the complete byte of frame 16', () => {
  const step = vectors.find((v) => v.name.startsWith('17-frame'))!.steps[0]!;
  const result = feed([step.request], 'request');
  assert.match(result.end, new RegExp(`^corrupt@${15 * (FRAME_HEADER_SIZE + MAX_FRAME_DATA) + 11}: message needs more than 16 frames`));
});

test('golden wrong protocol version is corrupt at byte 1', () => {
  const step = vectors.find((v) => v.name.startsWith('wrong protocol version'))!.steps[0]!;
  assert.match(feed([step.request], 'request').end, /^corrupt@1: wrong protocol version/);
});
