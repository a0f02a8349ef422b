// The distcc token codec: pure, incremental, bounded. Every distcc packet starts with a 12-byte
// header, a 4-letter token and 8 hex digits (C: dcc_x_token_int / dcc_r_token_int in tokens.c):
//
//   kind      tokens                          parameter            body
//   integer   DIST ARGC NFIL STAT DONE        the value            none
//   string    ARGV CDIR NAME LINK             byte length          raw bytes (no NUL, no charset)
//   bulk      DOTI SERR SOUT DOTO DOTD FILE   body length as sent  raw or LZO1X bytes
//
// We encode lowercase hex and accept either case. The decoder is told which tokens may come next,
// so a wrong byte is reported at the first byte that cannot start one of them, and every length
// is checked against its named limit before the body is waited for or allocated. Bodies are
// returned as views into the caller's buffer: copy them when keeping them past the next read.

export const HEADER_LENGTH = 12;

export const INTEGER_TOKENS = ['DIST', 'ARGC', 'NFIL', 'STAT', 'DONE'] as const;
export const STRING_TOKENS = ['ARGV', 'CDIR', 'NAME', 'LINK'] as const;
export const BULK_TOKENS = ['DOTI', 'SERR', 'SOUT', 'DOTO', 'DOTD', 'FILE'] as const;
export type IntegerToken = (typeof INTEGER_TOKENS)[number];
export type StringToken = (typeof STRING_TOKENS)[number];
export type BulkToken = (typeof BULK_TOKENS)[number];
export type Token = IntegerToken | StringToken | BulkToken;

/** Limits on every length read off the wire; the defaults are generous for real builds. */
export interface WireLimits {
  /** ARGC: arguments in one command line. */
  readonly maxArgc: number;
  /** ARGV: bytes in one argument (Linux MAX_ARG_STRLEN is 128 KiB). */
  readonly maxArgvLength: number;
  /** ARGV: bytes in the whole command line (Linux ARG_MAX is 2 MiB by default). */
  readonly maxArgvTotal: number;
  /** CDIR, NAME, LINK: a path (PATH_MAX). */
  readonly maxPathLength: number;
  /** NFIL: files in one protocol-3 request. */
  readonly maxFiles: number;
  /** DOTI: the preprocessed source as sent. */
  readonly maxDotiLength: number;
  /** FILE: one protocol-3 source or header as sent. */
  readonly maxFileLength: number;
  /** FILE: all protocol-3 bodies of one request together, as sent. */
  readonly maxFilesTotal: number;
  /** SERR SOUT DOTO DOTD: answer bodies (only a client decodes these). */
  readonly maxOutputLength: number;
}

export const DEFAULT_LIMITS: WireLimits = Object.freeze({
  maxArgc: 8192,
  maxArgvLength: 128 * 1024,
  maxArgvTotal: 2 * 1024 * 1024,
  maxPathLength: 4096,
  maxFiles: 65536,
  maxDotiLength: 256 * 1024 * 1024,
  maxFileLength: 64 * 1024 * 1024,
  maxFilesTotal: 512 * 1024 * 1024,
  maxOutputLength: 256 * 1024 * 1024,
});

export interface Packet {
  readonly token: Token;
  /** The header's number: the value of an integer packet, the body length of the others. */
  readonly param: number;
  /** String and bulk packets: a view of the body in the input buffer. */
  readonly body?: Buffer;
}

export type Decoded<T> =
  | { readonly kind: 'incomplete'; readonly needed: number }
  | { readonly kind: 'corrupt'; readonly reason: string }
  | { readonly kind: 'ok'; readonly value: T; readonly next: number };

const KINDS = new Map<Token, 'integer' | 'string' | 'bulk'>([
  ...INTEGER_TOKENS.map((t) => [t, 'integer'] as const),
  ...STRING_TOKENS.map((t) => [t, 'string'] as const),
  ...BULK_TOKENS.map((t) => [t, 'bulk'] as const),
]);

export function kindOf(token: Token): 'integer' | 'string' | 'bulk' {
  return KINDS.get(token) ?? 'bulk';
}

/** The largest body a token may carry under `limits` (integer packets: none). */
export function limitOf(token: Token, limits: WireLimits): number {
  switch (token) {
    case 'ARGV':
      return limits.maxArgvLength;
    case 'CDIR':
    case 'NAME':
    case 'LINK':
      return limits.maxPathLength;
    case 'DOTI':
      return limits.maxDotiLength;
    case 'FILE':
      return limits.maxFileLength;
    case 'SERR':
    case 'SOUT':
    case 'DOTO':
    case 'DOTD':
      return limits.maxOutputLength;
    default:
      return 0;
  }
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

function show(bytes: Buffer): string {
  return JSON.stringify(bytes.toString('latin1'));
}

/**
 * Decodes the 12-byte header at `offset` whose token is one of `expected`, checking a body length
 * against its limit: `incomplete` only while the bytes so far could still start a valid header.
 */
export function decodeHeader(
  input: Uint8Array,
  offset: number,
  expected: readonly Token[],
  limits: WireLimits = DEFAULT_LIMITS,
): Decoded<{ readonly token: Token; readonly param: number }> {
  const available = input.length - offset;
  // Token: fail at the first byte that no expected token has at that position.
  const tokenBytes = Math.min(4, available);
  let candidates = expected;
  for (let i = 0; i < tokenBytes; i++) {
    const byte = input[offset + i];
    if (candidates.length !== 1 || candidates[0]!.charCodeAt(i) !== byte) candidates = candidates.filter((t) => t.charCodeAt(i) === byte);
    if (candidates.length === 0) {
      const seen = Buffer.from(input.subarray(offset, offset + i + 1));
      return { kind: 'corrupt', reason: `expected token ${expected.join(' or ')}, got ${show(seen)}` };
    }
  }
  // Hex digits: fail at the first non-hex byte.
  const headerBytes = Math.min(HEADER_LENGTH, available);
  let param = 0;
  for (let i = 4; i < headerBytes; i++) {
    const digit = hexValue(input[offset + i]!);
    if (digit < 0) {
      const seen = Buffer.from(input.subarray(offset, offset + i + 1));
      return { kind: 'corrupt', reason: `bad hex digit in ${candidates[0]} header ${show(seen)}` };
    }
    param = param * 16 + digit;
  }
  if (available < HEADER_LENGTH) return { kind: 'incomplete', needed: HEADER_LENGTH - available };
  const token = candidates[0]!;
  if (kindOf(token) !== 'integer') {
    const limit = limitOf(token, limits);
    if (param > limit) return { kind: 'corrupt', reason: `${token} length ${param} exceeds the limit of ${limit} bytes` };
  }
  return { kind: 'ok', value: { token, param }, next: offset + HEADER_LENGTH };
}

/**
 * Decodes one packet at `offset` whose token is one of `expected`. Integer values are returned
 * unchecked (the session judges DIST or ARGC); lengths are checked against `limits`.
 */
export function decodePacket(
  input: Buffer,
  offset: number,
  expected: readonly Token[],
  limits: WireLimits = DEFAULT_LIMITS,
): Decoded<Packet> {
  const header = decodeHeader(input, offset, expected, limits);
  if (header.kind !== 'ok') return header;
  const { token, param } = header.value;
  if (kindOf(token) === 'integer') return { kind: 'ok', value: { token, param }, next: header.next };
  const end = header.next + param;
  if (input.length < end) return { kind: 'incomplete', needed: end - input.length };
  return { kind: 'ok', value: { token, param, body: input.subarray(header.next, end) }, next: end };
}

/** The 12-byte header `TOKEN` + 8 lowercase hex digits. */
export function encodeHeader(token: Token, param: number): Buffer {
  if (!Number.isInteger(param) || param < 0 || param > 0xffffffff) {
    throw new RangeError(`distcc ${token} parameter ${param} is not a 32-bit unsigned integer`);
  }
  return Buffer.from(token + param.toString(16).padStart(8, '0'), 'latin1');
}

/** An integer packet (DIST ARGC NFIL STAT DONE). */
export function encodeInteger(token: IntegerToken, value: number): Buffer {
  return encodeHeader(token, value);
}

/** A string or bulk packet as [header, body]: write both without copying the body. */
export function encodeBody(token: StringToken | BulkToken, body: Uint8Array | string): Buffer[] {
  const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return bytes.length === 0 ? [encodeHeader(token, 0)] : [encodeHeader(token, bytes.length), bytes];
}
