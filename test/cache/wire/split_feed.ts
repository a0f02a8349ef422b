// Feeds bytes to a MessageReader in given pieces and summarises what came out, so a test can
// assert that every way of splitting the same bytes gives the same messages and the same verdict.

import { createHash } from 'node:crypto';
import { MessageReader, type Direction } from '../../../src/cache/wire/index';

export interface FeedSummary {
  messages: Array<{ uid: number; operation: number; isResponse: boolean; frames: number; payload: string }>;
  end: string;
}

export function feed(pieces: Iterable<Uint8Array>, direction: Direction): FeedSummary {
  const reader = new MessageReader(direction);
  const messages: FeedSummary['messages'] = [];
  let end = 'incomplete';
  outer: for (const piece of pieces) {
    reader.push(piece);
    for (;;) {
      const r = reader.next();
      if (r.kind === 'incomplete') break;
      if (r.kind === 'corrupt') {
        end = `corrupt@${r.offset}: ${r.reason}`;
        break outer;
      }
      const m = r.value;
      // Summarise at once: views are only valid until the next push. Short payloads in hex (readable
      // failures), long ones as length + digest (32 KB hex strings per split would dominate the run).
      messages.push({ uid: m.uid, operation: m.operation, isResponse: m.isResponse, frames: m.frames, payload: summarisePayload(m.payload) });
    }
  }
  if (!end.startsWith('corrupt')) end = reader.buffered === 0 ? 'clean' : `incomplete:${reader.buffered}`;
  return { messages, end };
}

export function summarisePayload(payload: Buffer): string {
  return payload.length <= 64 ? payload.toString('hex') : `${payload.length}:${createHash('sha1').update(payload).digest('hex')}`;
}

export function* splitAt(bytes: Buffer, at: number): Generator<Buffer> {
  yield bytes.subarray(0, at);
  yield bytes.subarray(at);
}

export function* byteByByte(bytes: Buffer): Generator<Buffer> {
  for (let i = 0; i < bytes.length; i++) yield Buffer.from([bytes[i]!]);
}

/** Asserts-free helper: every split summary, for the caller to compare with the whole one. */
export function everySplit(bytes: Buffer, direction: Direction, step = 1): Array<[number, FeedSummary]> {
  const out: Array<[number, FeedSummary]> = [];
  for (let at = 0; at <= bytes.length; at += step) out.push([at, feed(splitAt(bytes, at), direction)]);
  return out;
}
