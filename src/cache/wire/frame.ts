// One distcache frame: decoding a header byte by byte (so corrupt input is rejected at the first
// bad byte) and encoding whole messages as frames. Pure: bytes in, values out.
//
// | offset | size | field        | rule                                                        |
// |--------|------|--------------|-------------------------------------------------------------|
// | 0      | 4    | proto_level  | high 16 bits 0x0011 (DC_MSG_PROTO_LEVEL); low 16 ignored     |
// | 4      | 1    | is_response  | 0 request, 1 response                                       |
// | 5      | 4    | request_uid  | echoed in every frame of the response                       |
// | 9      | 1    | op_class     | 0 (DC_CLASS_USER)                                           |
// | 10     | 1    | operation    | 0 ADD, 1 GET, 2 REMOVE, 3 HAVE (DC_CMD_*)                    |
// | 11     | 1    | complete     | 1 last frame, 0 more follow                                 |
// | 12     | 2    | data_len     | 0..2048 (DC_MSG_MAX_DATA); exactly 2048 when complete is 0  |
// | 14     | len  | data         | a fragment of the message payload                           |
// A frame is complete at exactly 14 + data_len bytes (the C decoder's data_len + 10 is a bug).

import {
  FRAME_HEADER_SIZE,
  INCOMPLETE,
  MAX_FRAMES,
  MAX_FRAME_DATA,
  MAX_OPERATION,
  MAX_PAYLOAD,
  OP_CLASS_USER,
  PROTO_HI,
  PROTO_LO,
  PROTO_WORD,
  type Decoded,
  type Direction,
  type Operation,
} from './constants';

export interface Frame {
  /** The whole first header word, patch level included (dc_snoop prints it). */
  readonly protoLevel: number;
  readonly isResponse: boolean;
  readonly uid: number;
  readonly operation: Operation;
  readonly complete: boolean;
  /** A view into the decoded buffer: copy it to keep it. */
  readonly data: Buffer;
}

/** What a continuation frame must repeat from the first frame of its message. */
export interface FrameContext {
  /** 0 for the first frame of a message. */
  readonly index: number;
  readonly uid: number;
  readonly operation: number;
}

export interface MessageHeader {
  readonly isResponse: boolean;
  readonly uid: number;
  readonly operation: Operation;
}

function corrupt(reason: string, offset: number): Decoded<never> {
  return { kind: 'corrupt', reason, offset };
}

function readU32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * Decodes the frame at `offset`, checking each header byte as soon as it is there. `context`
 * (a continuation) makes uid/operation mismatches and a 17th frame corrupt at their first byte.
 */
export function decodeFrame(
  buf: Uint8Array,
  direction: Direction,
  options: { offset?: number; context?: FrameContext } = {},
): Decoded<Frame> {
  const at = options.offset ?? 0;
  const context = options.context;
  const avail = buf.length - at;
  const expectResponse = direction === 'response' ? 1 : 0;
  if (avail < 1) return INCOMPLETE;
  if (buf[at] !== PROTO_HI) return corrupt(`wrong protocol version: byte 0 is ${hex(buf[at]!)}, want 0x00 0x11`, at);
  if (avail < 2) return INCOMPLETE;
  if (buf[at + 1] !== PROTO_LO) return corrupt(`wrong protocol version: byte 1 is ${hex(buf[at + 1]!)}, want 0x11`, at + 1);
  if (avail < 5) return INCOMPLETE;
  const isResponse = buf[at + 4]!;
  if (isResponse !== expectResponse) {
    return corrupt(`is_response ${hex(isResponse)} in a ${direction} (want ${expectResponse})`, at + 4);
  }
  // uid: for a continuation every byte must repeat the first frame's uid.
  for (let i = 0; i < 4; i++) {
    if (avail < 6 + i) return INCOMPLETE;
    if (context !== undefined && context.index > 0 && buf[at + 5 + i] !== ((context.uid >>> (24 - 8 * i)) & 0xff)) {
      return corrupt(`continuation frame ${context.index + 1} has a different uid than 0x${context.uid.toString(16)}`, at + 5 + i);
    }
  }
  if (avail < 10) return INCOMPLETE;
  if (buf[at + 9] !== OP_CLASS_USER) return corrupt(`op_class ${hex(buf[at + 9]!)} (want 0)`, at + 9);
  if (avail < 11) return INCOMPLETE;
  const operation = buf[at + 10]!;
  if (operation > MAX_OPERATION) return corrupt(`operation ${hex(operation)} (want 0..3)`, at + 10);
  if (context !== undefined && context.index > 0 && operation !== context.operation) {
    return corrupt(`continuation frame ${context.index + 1} has operation ${operation}, first had ${context.operation}`, at + 10);
  }
  if (avail < 12) return INCOMPLETE;
  const complete = buf[at + 11]!;
  if (complete > 1) return corrupt(`complete ${hex(complete)} (want 0 or 1)`, at + 11);
  const index = context?.index ?? 0;
  if (complete === 0 && index >= MAX_FRAMES - 1) {
    return corrupt(`message needs more than ${MAX_FRAMES} frames (${MAX_PAYLOAD} bytes)`, at + 11);
  }
  if (avail < 13) return INCOMPLETE;
  const high = buf[at + 12]!;
  if (high > MAX_FRAME_DATA >>> 8) return corrupt(`data_len above ${MAX_FRAME_DATA} (high byte ${hex(high)})`, at + 12);
  if (complete === 0 && high !== MAX_FRAME_DATA >>> 8) {
    return corrupt(`non-final frame shorter than ${MAX_FRAME_DATA} bytes (high byte ${hex(high)})`, at + 12);
  }
  if (avail < 14) return INCOMPLETE;
  const dataLength = (high << 8) | buf[at + 13]!;
  if (dataLength > MAX_FRAME_DATA) return corrupt(`data_len ${dataLength} above ${MAX_FRAME_DATA}`, at + 13);
  if (complete === 0 && dataLength !== MAX_FRAME_DATA) {
    return corrupt(`non-final frame carries ${dataLength} bytes, not ${MAX_FRAME_DATA}`, at + 13);
  }
  const end = at + FRAME_HEADER_SIZE + dataLength;
  if (buf.length < end) return INCOMPLETE;
  const uid = readU32(buf, at + 5);
  const view = Buffer.from(buf.buffer, buf.byteOffset + at + FRAME_HEADER_SIZE, dataLength);
  return {
    kind: 'ok',
    value: { protoLevel: readU32(buf, at), isResponse: isResponse === 1, uid, operation: operation as Operation, complete: complete === 1, data: view },
    next: end,
  };
}

/** Frames a payload of 0..32768 bytes: max(1, ceil(len/2048)) frames, the last marked complete. */
export function frameCount(payloadLength: number): number {
  return Math.max(1, Math.ceil(payloadLength / MAX_FRAME_DATA));
}

/** Encodes one whole message (every frame) into a single new buffer. */
export function encodeMessage(header: MessageHeader, payload: Uint8Array): Buffer {
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(`distcache payload of ${payload.length} bytes is above the ${MAX_PAYLOAD}-byte limit`);
  }
  if (!Number.isInteger(header.uid) || header.uid < 0 || header.uid > 0xffffffff) {
    throw new RangeError(`distcache uid ${header.uid} is not a 32-bit unsigned integer`);
  }
  if (!Number.isInteger(header.operation) || header.operation < 0 || header.operation > MAX_OPERATION) {
    throw new RangeError(`distcache operation ${header.operation} is not 0..3`);
  }
  const frames = frameCount(payload.length);
  const out = Buffer.allocUnsafe(frames * FRAME_HEADER_SIZE + payload.length);
  let pos = 0;
  for (let i = 0; i < frames; i++) {
    const start = i * MAX_FRAME_DATA;
    const length = Math.min(MAX_FRAME_DATA, payload.length - start);
    writeFrameHeader(out, pos, header.isResponse, header.uid, header.operation, i === frames - 1, length);
    if (frames === 1) out.set(payload, pos + FRAME_HEADER_SIZE);
    else out.set(payload.subarray(start, start + length), pos + FRAME_HEADER_SIZE);
    pos += FRAME_HEADER_SIZE + length;
  }
  return out;
}

/**
 * Writes one frame header at out[at, at + 14) for `length` data bytes; the caller has checked
 * the header (encodeMessage does) or took it from a decoded message. Byte by byte: Buffer's
 * writeUInt32BE checks its arguments again on every call, a measurable part of answering a GET.
 */
export function writeFrameHeader(out: Uint8Array, at: number, isResponse: boolean, uid: number, operation: Operation, complete: boolean, length: number): void {
  out[at] = PROTO_WORD >>> 24;
  out[at + 1] = (PROTO_WORD >>> 16) & 0xff;
  out[at + 2] = (PROTO_WORD >>> 8) & 0xff;
  out[at + 3] = PROTO_WORD & 0xff;
  out[at + 4] = isResponse ? 1 : 0;
  out[at + 5] = uid >>> 24;
  out[at + 6] = (uid >>> 16) & 0xff;
  out[at + 7] = (uid >>> 8) & 0xff;
  out[at + 8] = uid & 0xff;
  out[at + 9] = OP_CLASS_USER;
  out[at + 10] = operation;
  out[at + 11] = complete ? 1 : 0;
  out[at + 12] = length >>> 8;
  out[at + 13] = length & 0xff;
}
