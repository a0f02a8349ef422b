// The distcache wire codec fuzzer (design.md rule 6). Each case feeds one damaged stream (see
// cache_mutators) to decodeMessage, to a MessageReader whole and in random chunks (and, for one
// case in 64, split at every offset and byte by byte) and every ADD payload to decodeAddPayload,
// and checks:
// - nothing throws: the codec's only way to refuse is its own corrupt result;
// - the limits hold: 1..16 frames and at most 32768 payload bytes per message, a reader never
//   waits ("incomplete") while holding a whole largest message or more, a corrupt offset lies in
//   the input, an ADD the codec accepts has a 1..64-byte id, at least one data byte and a timeout
//   of at most 7 days;
// - progress: every message consumes bytes, and the decode loop ends within bytes/14 + 2 steps;
// - split-proof: every way of chunking the same bytes gives the same messages and verdict.
// A case slower than HANG_MS counts as a hang. Cases are independent and seeded from (seed, index).

import {
  decodeAddPayload,
  decodeMessage,
  FRAME_HEADER_SIZE,
  MAX_FRAME_DATA,
  MAX_FRAMES,
  MAX_ID_LENGTH,
  MAX_MESSAGE_WIRE,
  MAX_PAYLOAD,
  MAX_TIMEOUT_MS,
  MessageReader,
  Operation,
  Status,
  type Direction,
} from '../../src/cache/wire/index';
import { fuzzStream, randomChunks } from './cache_mutators';
import { runInProcessCases, type CaseOutcome as SharedCaseOutcome, type FuzzTarget } from './fuzz_target';
import { Rng } from './rng';

export const HANG_MS = 2000;

/** Thrown by a check: an invariant broken (a finding, not a crash of the code under test). */
export class Violation extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Violation(message);
}

const STATUSES = new Set<number>(Object.values(Status));

function fnv(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** What a reader made of a stream: one token per message, then the verdict. */
function readAll(pieces: Iterable<Uint8Array>, direction: Direction, total: number): string {
  const reader = new MessageReader(direction);
  const out: string[] = [];
  let verdict = 'incomplete';
  outer: for (const piece of pieces) {
    reader.push(piece);
    // Each message takes at least one 14-byte header, so the loop is bounded by what is buffered.
    const bound = reader.buffered / FRAME_HEADER_SIZE + 2;
    for (let steps = 1; ; steps++) {
      check(steps <= bound, `reader loop did not end after ${steps} steps on ${total} bytes`);
      const before = reader.consumed;
      const r = reader.next();
      if (r.kind === 'incomplete') {
        check(reader.buffered < MAX_MESSAGE_WIRE, `reader waits holding ${reader.buffered} bytes (a whole message is at most ${MAX_MESSAGE_WIRE})`);
        break;
      }
      if (r.kind === 'corrupt') {
        check(typeof r.reason === 'string' && r.reason.length > 0, 'corrupt without a reason');
        check(r.offset >= before && r.offset < total, `corrupt offset ${r.offset} outside ${before}..${total}`);
        verdict = `corrupt@${r.offset}:${r.reason}`;
        check(reader.next().kind === 'corrupt', 'reader left the corrupt state');
        break outer;
      }
      const m = r.value;
      check(reader.consumed > before, 'a message consumed no bytes');
      checkMessage(m.frames, m.payload, m.operation, direction, reader.consumed - before);
      out.push(`${m.uid}/${m.operation}/${m.frames}/${m.payload.length}/${fnv(m.payload)}`);
    }
  }
  if (!verdict.startsWith('corrupt')) verdict = `incomplete:${reader.buffered}`;
  return `${out.join(' ')}|${verdict}`;
}

function checkMessage(frames: number, payload: Buffer, operation: number, direction: Direction, wireBytes: number): void {
  check(frames >= 1 && frames <= MAX_FRAMES, `message of ${frames} frames`);
  check(payload.length <= MAX_PAYLOAD, `payload of ${payload.length} bytes`);
  check(payload.length <= frames * MAX_FRAME_DATA && payload.length >= (frames - 1) * MAX_FRAME_DATA, `payload ${payload.length} in ${frames} frames`);
  check(wireBytes === frames * FRAME_HEADER_SIZE + payload.length, `message took ${wireBytes} wire bytes for ${frames} frames of ${payload.length}`);
  check(operation >= 0 && operation <= 3, `operation ${operation}`);
  if (direction !== 'request' || operation !== Operation.ADD) return;
  const add = decodeAddPayload(payload);
  if (add.kind === 'short') check(payload.length < 8, `short ADD of ${payload.length} bytes`);
  else if (add.kind === 'rejected') check(STATUSES.has(add.status) && add.status >= Status.ADD_CORRUPT, `ADD rejected with status ${add.status}`);
  else {
    const { id, data, timeoutMs } = add.value;
    check(id.length >= 1 && id.length <= MAX_ID_LENGTH, `ADD accepted with a ${id.length}-byte id`);
    check(data.length >= 1 && timeoutMs <= MAX_TIMEOUT_MS, `ADD accepted with ${data.length} data bytes, timeout ${timeoutMs}`);
    check(8 + id.length + data.length === payload.length, 'ADD id and data do not cover the payload');
  }
}

/** The stateless decoder over the whole buffer must agree with the reader fed it whole. */
function decodeWhole(bytes: Buffer, direction: Direction): string {
  const out: string[] = [];
  let at = 0;
  for (let steps = 0; ; steps++) {
    check(steps <= bytes.length / FRAME_HEADER_SIZE + 2, 'decodeMessage loop did not end');
    const r = decodeMessage(bytes, direction, { offset: at });
    if (r.kind === 'incomplete') return `${out.join(' ')}|incomplete:${bytes.length - at}`;
    if (r.kind === 'corrupt') return `${out.join(' ')}|corrupt@${r.offset}:${r.reason}`;
    check(r.next > at && r.next <= bytes.length, `decodeMessage next ${r.next} from ${at} of ${bytes.length}`);
    const m = r.value;
    out.push(`${m.uid}/${m.operation}/${m.frames}/${m.payload.length}/${fnv(m.payload)}`);
    at = r.next;
  }
}

export type CaseOutcome = SharedCaseOutcome<{ readonly messages: number; readonly verdict: 'corrupt' | 'incomplete' | 'clean' }>;

/** Runs case `index` of run `seed`. Never throws. */
export function runWireCase(seed: number, index: number): CaseOutcome {
  const rng = new Rng(seed, index);
  const direction: Direction = rng.chance(0.8) ? 'request' : 'response';
  let input: Buffer = Buffer.alloc(0);
  let messages = 0;
  let verdict: 'corrupt' | 'incomplete' | 'clean' = 'clean';
  const started = performance.now();
  try {
    input = fuzzStream(rng, direction);
    const whole = readAll([input], direction, input.length);
    const tail = whole.slice(whole.lastIndexOf('|') + 1);
    verdict = tail.startsWith('corrupt') ? 'corrupt' : tail === 'incomplete:0' ? 'clean' : 'incomplete';
    messages = whole.startsWith('|') ? 0 : whole.slice(0, whole.lastIndexOf('|')).split(' ').length;
    check(decodeWhole(input, direction) === whole, 'decodeMessage and MessageReader disagree');
    const chunked = readAll(randomChunks(rng, input), direction, input.length);
    check(chunked === whole, `chunked feed differs: ${chunked.slice(0, 200)} vs ${whole.slice(0, 200)}`);
    if (index % 64 === 0) {
      const step = input.length > 2200 ? Math.ceil(input.length / 512) : 1;
      for (let at = 0; at <= input.length; at += step) {
        const split = readAll([input.subarray(0, at), input.subarray(at)].map((b) => Buffer.from(b)), direction, input.length);
        check(split === whole, `split at ${at} differs`);
      }
      if (input.length <= 4200) {
        const bytes = Array.from(input, (b) => Buffer.from([b]));
        check(readAll(bytes, direction, input.length) === whole, 'byte-by-byte feed differs');
      }
    }
  } catch (error) {
    const kind = error instanceof Violation ? 'violation' : 'crash';
    return { kind, detail: error instanceof Error ? (error.stack ?? error.message) : String(error), input };
  }
  const ms = performance.now() - started;
  if (ms > HANG_MS) return { kind: 'hang', detail: `case took ${ms.toFixed(0)} ms`, input };
  return { kind: 'pass', messages, verdict };
}

/** The `cache` target of `npm run fuzz`: the wire codec, in this process. */
export const cacheWireTarget: FuzzTarget = {
  name: 'cache',
  describe: 'distcache wire codec (frames, message reader, ADD payload): damaged golden and generated streams',
  async run(options) {
    const seen = { messages: 0, corrupt: 0, incomplete: 0, clean: 0 };
    return runInProcessCases('cache', options, {
      runCase: (index) => runWireCase(options.seed, index),
      tally: (pass) => {
        seen.messages += pass.messages;
        seen[pass.verdict]++;
      },
      extra: () => ({ messages_decoded: seen.messages, streams_corrupt: seen.corrupt, streams_incomplete: seen.incomplete, streams_clean: seen.clean }),
    });
  },
};
