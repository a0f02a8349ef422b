// The bytes of one object-cache entry: what a successful compile answered (object, the .d file of
// a pump job in the client's form, stdout, stderr), framed and sealed with a SHA-256 of the key
// and the body. Exit status is not stored: only compiles that exited 0 are kept. The entry of a
// protocol 2/3 job holds its parts LZO1X-compressed, as the answer carries them: a hit sends
// them as they are instead of compressing the object again (the key names the protocol, so a
// protocol-1 job never meets such an entry).
//
//   offset  size  field
//   0       4     magic "DKOC"
//   4       1     format version (ENTRY_FORMAT)
//   5       1     flags: bit 0 = a .d file follows the object; bit 1 = the parts are LZO1X-compressed
//   6       2     reserved, 0
//   8       4     object length          (u32 big-endian, each <= ENTRY_MAX_PART)
//   12      4     .d length (0 without flag bit 0)
//   16      4     stdout length
//   20      4     stderr length
//   24      ...   object, .d, stdout, stderr
//   end-32  32    SHA-256(key in ASCII, then every byte before this field)
//
// The checksum covers the key too, so an entry moved under another key (a renamed file, a
// misplaced write) is rejected, not served as another translation unit's object. decodeEntry is
// total: anything but an intact entry for this key is undefined (a miss), never a throw.

import { createHash } from 'node:crypto';

export const ENTRY_MAGIC = Buffer.from('DKOC', 'latin1');
const MAGIC_WORD = ENTRY_MAGIC.readUInt32BE(0);
export const ENTRY_FORMAT = 2;
const HEADER_BYTES = 24;
const DIGEST_BYTES = 32;
/** Largest part a u32 length field can carry. */
export const ENTRY_MAX_PART = 0xffff_ffff;

export interface CacheEntry {
  readonly object: Buffer;
  /** The pump job's .d file as the client receives it; undefined for protocols 1 and 2. */
  readonly depfile?: Buffer;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  /** The four parts are LZO1X-compressed as protocols 2 and 3 send them (empty ones stay empty). */
  readonly compressed?: boolean;
}

function digestOf(key: string, parts: readonly Uint8Array[]): Buffer {
  const hash = createHash('sha256').update(key, 'latin1');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** The entry's bytes, sealed for `key`. */
export function encodeEntry(key: string, entry: CacheEntry): Buffer {
  const parts = [entry.object, entry.depfile ?? Buffer.alloc(0), entry.stdout, entry.stderr];
  for (const part of parts) if (part.length > ENTRY_MAX_PART) throw new RangeError(`cache entry part of ${part.length} bytes exceeds ${ENTRY_MAX_PART}`);
  const header = Buffer.alloc(HEADER_BYTES);
  ENTRY_MAGIC.copy(header, 0);
  header[4] = ENTRY_FORMAT;
  header[5] = (entry.depfile !== undefined ? 1 : 0) | (entry.compressed === true ? 2 : 0);
  parts.forEach((part, i) => header.writeUInt32BE(part.length, 8 + 4 * i));
  const body = [header, ...parts];
  return Buffer.concat([...body, digestOf(key, body)]);
}

/**
 * Entries isIntactEntry has just checked, by the buffer they were read into: the disk tier checks
 * what it reads and the cache then decodes the same bytes at once, so the checksum is computed
 * once. A decode takes the mark away: a buffer checked again is hashed again.
 */
const checked = new WeakMap<Buffer, { readonly key: string; readonly entry: CacheEntry }>();

/** The entry in `bytes` when they are an intact entry for `key`; undefined otherwise. Copies nothing out of `bytes`. */
export function decodeEntry(key: string, bytes: Buffer): CacheEntry | undefined {
  const known = checked.get(bytes);
  checked.delete(bytes);
  return known !== undefined && known.key === key ? known.entry : decodeUnchecked(key, bytes);
}

function decodeUnchecked(key: string, bytes: Buffer): CacheEntry | undefined {
  if (bytes.length < HEADER_BYTES + DIGEST_BYTES) return undefined;
  if (bytes.readUInt32BE(0) !== MAGIC_WORD || bytes[4] !== ENTRY_FORMAT || bytes[6] !== 0 || bytes[7] !== 0) return undefined;
  const flags = bytes[5]!;
  if ((flags & ~3) !== 0) return undefined;
  const objectLength = bytes.readUInt32BE(8);
  const depfileLength = bytes.readUInt32BE(12);
  const stdoutLength = bytes.readUInt32BE(16);
  const stderrLength = bytes.readUInt32BE(20);
  if ((flags & 1) === 0 && depfileLength !== 0) return undefined;
  const end = bytes.length - DIGEST_BYTES;
  if (HEADER_BYTES + objectLength + depfileLength + stdoutLength + stderrLength !== end) return undefined;
  const digest = createHash('sha256').update(key, 'latin1').update(bytes.subarray(0, end)).digest();
  if (!bytes.subarray(end).equals(digest)) return undefined;
  let at = HEADER_BYTES;
  const part = (length: number): Buffer => bytes.subarray(at, (at += length));
  const object = part(objectLength);
  const depfile = part(depfileLength);
  const entry = { object, depfile: (flags & 1) !== 0 ? depfile : undefined, stdout: part(stdoutLength), stderr: part(stderrLength) };
  return (flags & 2) !== 0 ? { ...entry, compressed: true } : entry;
}

/** Whether `bytes` are an intact entry for `key` (the disk tier's check on read). */
export function isIntactEntry(key: string, bytes: Buffer): boolean {
  const entry = decodeUnchecked(key, bytes);
  if (entry !== undefined) checked.set(bytes, { key, entry });
  return entry !== undefined;
}
