// Room in a transport's outgoing bytes that an answer can be written into directly (the socket
// pump's output area, ../activation/socket_pump): a GET hit is copied from the store's slab
// straight there, where it used to be copied into a new Buffer and then again into the area.

import { FRAME_HEADER_SIZE, MAX_FRAME_DATA, type Operation } from './wire/constants';
import { writeFrameHeader } from './wire/frame';

/** Where a connection's next answer can go in place. */
export interface OutputArea {
  /** What claimed room is in (the same Buffer for every claim). */
  readonly bytes: Buffer;
  /** Room for `length` more bytes of this connection's answers, after what it added before: the
   * offset in `bytes` to write them at, now, or -1 when there is none (add() them instead). */
  claim(length: number): number;
}

/** How a store writes a hit into an OutputArea: `headroom` bytes left before the data, filled by
 * frame() once the data is in; data over `maxLength` bytes is not written in place. */
export interface InPlaceHit {
  readonly headroom: number;
  readonly maxLength: number;
  frame(bytes: Buffer, at: number, length: number): void;
}

/** What SessionStore.getInto did. */
export const WROTE = 1;
export const MISSED = 0;
/** No room (or too long): the caller answers with get() instead. */
export const NOT_IN_PLACE = -1;

/** Writes the response to request `uid` with `payload` into `output` as one frame, at room it
 * claims: false when there is no area, the payload needs more than one frame, or there is no
 * room (the caller then frames it as bytes of its own). A status (one byte) is stored without
 * set(). */
export function frameInto(output: OutputArea | undefined, uid: number, operation: Operation, payload: Uint8Array): boolean {
  if (output === undefined || payload.length > MAX_FRAME_DATA) return false;
  const at = output.claim(FRAME_HEADER_SIZE + payload.length);
  if (at < 0) return false;
  const bytes = output.bytes;
  writeFrameHeader(bytes, at, true, uid, operation, true, payload.length);
  if (payload.length === 1) bytes[at + FRAME_HEADER_SIZE] = payload[0]!;
  else bytes.set(payload, at + FRAME_HEADER_SIZE);
  return true;
}
