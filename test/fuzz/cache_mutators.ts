// Inputs for the distcache fuzzers: streams of request (or response) frames built from the bytes
// captured from the real C dc_server (test/fixtures/distcache-golden.json) and from generated
// valid messages (payload sizes at the frame edges, 4069-4072 bytes where the C decoder's
// off-by-4 bites, 32768 bytes), then damaged: bit flips, byte sets, truncation, duplicated,
// dropped and reordered frames, huge or off-by-one lengths, inserted garbage, foreign protocols.

import { encodeAddPayload, encodeMessage, FRAME_HEADER_SIZE, MAX_FRAME_DATA, MAX_PAYLOAD, Operation, type Direction } from '../../src/cache/wire/index';
import { loadGoldenVectors } from '../cache/golden_vectors';
import type { Rng } from './rng';

/** Sizes worth hitting: frame edges, the C off-by-4 window, the message limit. */
export const EDGE_PAYLOAD_SIZES = [0, 1, 7, 8, 9, 2047, 2048, 2049, 4069, 4070, 4071, 4072, 4096, 4097, 30720, 32767, 32768];

/** Splits a byte stream into frames by their declared lengths (a damaged tail stays one piece). */
export function splitFrames(stream: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let at = 0;
  while (at < stream.length) {
    const len = at + FRAME_HEADER_SIZE <= stream.length ? stream.readUInt16BE(at + 12) : 0;
    const end = Math.min(stream.length, at + FRAME_HEADER_SIZE + len);
    frames.push(stream.subarray(at, end));
    at = end;
  }
  return frames;
}

let goldenFrames: Buffer[][] | undefined;

/** Every golden request (and response) as a list of frames, loaded once. */
export function goldenCorpus(direction: Direction): Buffer[][] {
  if (goldenFrames === undefined) {
    goldenFrames = [];
    for (const v of loadGoldenVectors()) {
      for (const s of v.steps) {
        goldenFrames.push(splitFrames(s.request));
        if (s.response.length > 0) goldenFrames.push(splitFrames(s.response));
      }
    }
  }
  const want = direction === 'request' ? 0 : 1;
  return goldenFrames.filter((frames) => frames[0]!.length > 4 && frames[0]![4] === want);
}

/** One valid message with a random operation, uid and a payload of an interesting size. */
export function generateMessage(rng: Rng, direction: Direction): Buffer {
  const operation = rng.below(4) as Operation;
  const uid = rng.chance(0.2) ? rng.pick([0, 1, 0xffffffff, 0x80000000]) : rng.u32();
  let payload: Buffer;
  if (direction === 'request' && operation === Operation.ADD && rng.chance(0.8)) {
    const id = rng.bytes(rng.chance(0.9) ? rng.between(1, 64) : rng.pick([0, 65, 200]));
    const room = MAX_PAYLOAD - 8 - id.length;
    const dataLength = rng.chance(0.5) ? Math.max(1, Math.min(room, rng.pick(EDGE_PAYLOAD_SIZES) - 8 - id.length)) : rng.between(1, Math.min(room, 600));
    payload = encodeAddPayload({ timeoutMs: rng.chance(0.1) ? rng.u32() % 700_000_000 : rng.between(0, 600_000), id, data: rng.bytes(dataLength) });
  } else {
    payload = rng.bytes(rng.chance(0.3) ? rng.pick(EDGE_PAYLOAD_SIZES) : rng.between(0, rng.chance(0.9) ? 80 : MAX_PAYLOAD));
  }
  return encodeMessage({ isResponse: direction === 'response', uid, operation }, payload);
}

/** A clean stream of 1..maxMessages messages, as frames (golden or generated). */
export function baseFrames(rng: Rng, direction: Direction, maxMessages = 4): Buffer[] {
  const frames: Buffer[] = [];
  const n = rng.between(1, maxMessages);
  const golden = goldenCorpus(direction);
  for (let i = 0; i < n; i++) {
    if (golden.length > 0 && rng.chance(0.5)) frames.push(...rng.pick(golden));
    else frames.push(...splitFrames(generateMessage(rng, direction)));
  }
  return frames;
}

const FOREIGN = [
  Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
  Buffer.from('16030100a5010000a10303', 'hex'),
  Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'),
  Buffer.from('DIST00000001ARGC00000002', 'ascii'),
  Buffer.alloc(64, 0),
  Buffer.alloc(64, 0xff),
];

/** Applies 0..3 frame- and byte-level mutations; returns the damaged stream. */
export function mutateFrames(rng: Rng, input: Buffer[]): Buffer {
  let frames: Buffer[] = input.map((f) => Buffer.from(f));
  const rounds = rng.chance(0.15) ? 0 : rng.between(1, 3);
  for (let r = 0; r < rounds && frames.length > 0; r++) {
    const i = rng.below(frames.length);
    switch (rng.below(10)) {
      case 0: // duplicate a frame (a stale replay, the C off-by-4's effect)
        frames.splice(i, 0, Buffer.from(frames[i]!));
        break;
      case 1: {
        // reorder two frames
        const j = rng.below(frames.length);
        [frames[i], frames[j]] = [frames[j]!, frames[i]!];
        break;
      }
      case 2: // drop a frame
        frames.splice(i, 1);
        break;
      case 3: {
        // huge, off-by-one or random data_len
        const f = frames[i]!;
        if (f.length >= FRAME_HEADER_SIZE) {
          const len = rng.pick([0xffff, MAX_FRAME_DATA + 1, MAX_FRAME_DATA - 1, 0, f.length - FRAME_HEADER_SIZE + 4, f.length - FRAME_HEADER_SIZE - 4, rng.below(0x10000)]);
          f.writeUInt16BE(Math.max(0, Math.min(0xffff, len)), 12);
        }
        break;
      }
      case 4: // flip the complete flag or set a header byte to a boundary value
        if (frames[i]!.length >= FRAME_HEADER_SIZE) frames[i]![rng.pick([4, 9, 10, 11, 11, 0, 1, 2, 3])] = rng.pick([0, 1, 2, 3, 4, 0x10, 0x11, 0x12, 0xff]);
        break;
      case 5:
        // insert garbage or a foreign protocol's greeting
        frames.splice(i, 0, rng.chance(0.5) ? rng.pick(FOREIGN) : rng.bytes(rng.between(1, 40)));
        break;
      default: {
        // bit flips / byte sets anywhere (header bytes more often)
        const f = frames[i]!;
        if (f.length === 0) break;
        const flips = rng.between(1, 4);
        for (let k = 0; k < flips; k++) {
          const at = rng.chance(0.6) ? rng.below(Math.min(f.length, FRAME_HEADER_SIZE)) : rng.below(f.length);
          if (rng.chance(0.7)) f[at] = f[at]! ^ (1 << rng.below(8));
          else f[at] = rng.u32() & 0xff;
        }
      }
    }
  }
  let stream = Buffer.concat(frames);
  if (rng.chance(0.2) && stream.length > 0) stream = stream.subarray(0, rng.below(stream.length)); // truncation
  frames = [];
  return stream;
}

/** One fuzz input: random bytes, a foreign protocol, or a damaged stream of frames. */
export function fuzzStream(rng: Rng, direction: Direction, maxMessages = 4): Buffer {
  const kind = rng.below(20);
  if (kind === 0) return rng.bytes(rng.between(0, 64));
  if (kind === 1) {
    // A valid-looking header followed by random bytes: exercises every length path.
    const b = rng.bytes(rng.between(14, 4200));
    b.writeUInt32BE(0x00110000 | rng.below(0x10000), 0);
    b[4] = direction === 'request' ? 0 : 1;
    b[9] = 0;
    b[10] = rng.below(5);
    b[11] = rng.below(3);
    return b;
  }
  return mutateFrames(rng, baseFrames(rng, direction, maxMessages));
}

/** Splits `bytes` into 1..maxPieces chunks at random points (copies, like socket reads). */
export function randomChunks(rng: Rng, bytes: Buffer, maxPieces = 6): Buffer[] {
  const pieces = rng.between(1, maxPieces);
  const cuts = new Set<number>();
  for (let i = 1; i < pieces; i++) cuts.add(rng.below(bytes.length + 1));
  const points = [0, ...[...cuts].sort((a, b) => a - b), bytes.length];
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < points.length; i++) out.push(Buffer.from(bytes.subarray(points[i]!, points[i + 1]!)));
  return out;
}
