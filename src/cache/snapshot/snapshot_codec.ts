// The snapshot file format of dc_server's sessions: pure bytes in, sessions out (no files, no
// clock). A snapshot is written on stop (and every -snapshot-interval) and read back at start, so
// a restart keeps the TLS sessions with their absolute (wall-clock) expiry.
//
//   offset  size  field (little-endian)
//   0       8     magic "\x89DCSNAP\n" (PNG-style: a text-mode copy or a foreign file fails here)
//   8       4     version (SNAPSHOT_VERSION)
//   12      4     flags (0; reserved)
//   16      8     written at, ms since the epoch (float64; for the log only)
//   24      ...   records, first added first:
//                   8 expiresAt (float64, ms since the epoch: the session expires when now > it)
//                   1 id length (0..MAX_ID_LENGTH)
//                   2 data length (0..MAX_DATA_LENGTH)
//                   id bytes, data bytes
//   end-8   4     record count
//   end-4   4     CRC-32 (zlib's) of every byte before it
//
// Decoding checks the magic, the version, the CRC and then walks every record against the named
// limits before yielding the first one, so a truncated, bit-flipped or foreign file is rejected
// whole: a store is never half-loaded from a bad file.

import zlib from 'node:zlib';
import { MAX_DATA_LENGTH, MAX_ID_LENGTH } from '../wire/constants';
import type { StoredSession } from '../stores/session_store';

export const SNAPSHOT_MAGIC: Buffer = Buffer.from('\x89DCSNAP\n', 'latin1');
export const SNAPSHOT_VERSION = 1;
const HEADER_SIZE = 24;
const RECORD_PREFIX_SIZE = 11;
const TRAILER_SIZE = 8;
/** Records are packed into chunks of about this size while encoding (few, large writes). */
const CHUNK_SIZE = 4 * 1024 * 1024;

export type SnapshotDecodeResult =
  | { readonly kind: 'ok'; readonly writtenAt: number; readonly count: number; readonly sessions: Iterable<StoredSession> }
  | { readonly kind: 'corrupt'; readonly reason: string };

/**
 * Encodes the snapshot of `sessions` into one reused chunk of about CHUNK_SIZE bytes, handing each
 * full chunk to `emit` (a view valid only until emit returns: write it or copy it), and returns
 * how many sessions it holds. Reusing one chunk keeps the memory touched small and warm: at 10^6
 * sessions that is a quarter of the cost of a fresh buffer per chunk. Each id and data must be
 * within the protocol limits (a RangeError otherwise: the store let in what the wire cannot carry).
 */
export function encodeSnapshot(sessions: Iterable<StoredSession>, options: { readonly writtenAt: number; readonly emit: (bytes: Buffer) => void }): number {
  const { emit } = options;
  const chunk = Buffer.allocUnsafe(CHUNK_SIZE);
  let at = 0;
  let crc = 0;
  let count = 0;
  const flush = (): void => {
    const full = chunk.subarray(0, at);
    crc = zlib.crc32(full, crc);
    emit(full);
    at = 0;
  };
  SNAPSHOT_MAGIC.copy(chunk, 0);
  chunk.writeUInt32LE(SNAPSHOT_VERSION, 8);
  chunk.writeUInt32LE(0, 12);
  chunk.writeDoubleLE(options.writtenAt, 16);
  at = HEADER_SIZE;
  for (const { id, data, expiresAt } of sessions) {
    if (id.length > MAX_ID_LENGTH) throw new RangeError(`session id of ${id.length} bytes is longer than ${MAX_ID_LENGTH}`);
    if (data.length > MAX_DATA_LENGTH) throw new RangeError(`session data of ${data.length} bytes is longer than ${MAX_DATA_LENGTH}`);
    const size = RECORD_PREFIX_SIZE + id.length + data.length;
    if (at + size > CHUNK_SIZE) flush();
    chunk.writeDoubleLE(expiresAt, at);
    chunk[at + 8] = id.length;
    chunk.writeUInt16LE(data.length, at + 9);
    at += RECORD_PREFIX_SIZE;
    // TypedArray#set: cheaper than Buffer#copy for buffers this small.
    chunk.set(id, at);
    at += id.length;
    chunk.set(data, at);
    at += data.length;
    count++;
  }
  if (at + TRAILER_SIZE > CHUNK_SIZE) flush();
  chunk.writeUInt32LE(count, at);
  crc = zlib.crc32(chunk.subarray(0, at + 4), crc);
  chunk.writeUInt32LE(crc, at + 4);
  emit(chunk.subarray(0, at + TRAILER_SIZE));
  return count;
}

/** Checks a whole snapshot; on success its sessions are views into `bytes` (copy to keep them). */
export function decodeSnapshot(bytes: Buffer): SnapshotDecodeResult {
  if (bytes.length < SNAPSHOT_MAGIC.length || !bytes.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)) {
    return corrupt('not a dc_server snapshot (bad magic)');
  }
  if (bytes.length < HEADER_SIZE + TRAILER_SIZE) return corrupt(`truncated: ${bytes.length} bytes is shorter than an empty snapshot`);
  const version = bytes.readUInt32LE(8);
  if (version !== SNAPSHOT_VERSION) return corrupt(`version ${version}, this dc_server reads version ${SNAPSHOT_VERSION}`);
  const end = bytes.length - TRAILER_SIZE;
  const stored = bytes.readUInt32LE(end + 4);
  const computed = zlib.crc32(bytes.subarray(0, end + 4));
  if (stored !== computed) return corrupt(`checksum mismatch (truncated or damaged): stored ${hex(stored)}, computed ${hex(computed)}`);
  const count = bytes.readUInt32LE(end);
  let at = HEADER_SIZE;
  let seen = 0;
  while (at < end) {
    if (end - at < RECORD_PREFIX_SIZE) return corrupt(`record ${seen} at offset ${at}: header cut short`);
    const expiresAt = bytes.readDoubleLE(at);
    const idLength = bytes[at + 8]!;
    const dataLength = bytes.readUInt16LE(at + 9);
    if (!Number.isFinite(expiresAt)) return corrupt(`record ${seen} at offset ${at}: expiry is not a number`);
    if (idLength > MAX_ID_LENGTH) return corrupt(`record ${seen} at offset ${at}: id of ${idLength} bytes is longer than ${MAX_ID_LENGTH}`);
    if (dataLength > MAX_DATA_LENGTH) return corrupt(`record ${seen} at offset ${at}: data of ${dataLength} bytes is longer than ${MAX_DATA_LENGTH}`);
    at += RECORD_PREFIX_SIZE + idLength + dataLength;
    if (at > end) return corrupt(`record ${seen}: runs past the end of the records`);
    seen++;
  }
  if (seen !== count) return corrupt(`${seen} records, the trailer says ${count}`);
  return { kind: 'ok', writtenAt: bytes.readDoubleLE(16), count, sessions: recordsOf(bytes, end) };
}

function* recordsOf(bytes: Buffer, end: number): Generator<StoredSession> {
  let at = HEADER_SIZE;
  while (at < end) {
    const expiresAt = bytes.readDoubleLE(at);
    const idStart = at + RECORD_PREFIX_SIZE;
    const dataStart = idStart + bytes[at + 8]!;
    at = dataStart + bytes.readUInt16LE(at + 9);
    yield { id: bytes.subarray(idStart, dataStart), data: bytes.subarray(dataStart, at), expiresAt };
  }
}

function corrupt(reason: string): SnapshotDecodeResult {
  return { kind: 'corrupt', reason };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
