// The numbers of the distcache wire protocol (version 0x0011, distcache 1.4.x/1.5.1): frame
// layout, limits, operations and status bytes. Every limit the codec enforces is named here, with
// the C name it carries in libdistcache (include/distcache/dc_enc.h, dc_internal.h) in a comment.

/** DC_MSG_PROTO_LEVEL: high 16 bits of the first header word; the low 16 (patch) are ignored. */
export const PROTO_LEVEL = 0x0011;
/** The level's two bytes as they open every frame (byte 0, byte 1). */
export const PROTO_HI = PROTO_LEVEL >>> 8;
export const PROTO_LO = PROTO_LEVEL & 0xff;
/** What we send in the first header word: DC_MSG_PROTO_LEVEL << 16, patch 0. */
export const PROTO_WORD = 0x00110000;
/** DC_MSG_MAX_DATA: data bytes one frame carries at most (and exactly, when not the last). */
export const MAX_FRAME_DATA = 2048;
/** Fixed frame header: proto(4) is_response(1) uid(4) op_class(1) op(1) complete(1) data_len(2). */
export const FRAME_HEADER_SIZE = 14;
/** DC_MAX_TOTAL_DATA (DC_MSG_MAX_DATA * 16): largest message payload. */
export const MAX_PAYLOAD = 32768;
/** Frames per message at most (DC_MAX_TOTAL_DATA / DC_MSG_MAX_DATA). */
export const MAX_FRAMES = MAX_PAYLOAD / MAX_FRAME_DATA;
/** Largest message on the wire: 16 full frames. An incomplete tail is always shorter. */
export const MAX_MESSAGE_WIRE = MAX_FRAMES * (FRAME_HEADER_SIZE + MAX_FRAME_DATA);
/** Unparsed input a MessageReader holds at most (a consumer that stops calling next() while
 * still pushing is a bug or an attack; a paused socket delivers at most a chunk or two). */
export const MAX_READER_BUFFER = 4 * 1024 * 1024;
/** DC_CLASS_USER: the only op_class there is. */
export const OP_CLASS_USER = 0;

/** DC_CMD_*: the operation byte. */
export const Operation = { ADD: 0, GET: 1, REMOVE: 2, HAVE: 3 } as const;
export type Operation = (typeof Operation)[keyof typeof Operation];
/** Highest valid operation byte (DC_CMD_HAVE). */
export const MAX_OPERATION = Operation.HAVE;
export const OPERATION_NAMES: readonly string[] = ['ADD', 'GET', 'REMOVE', 'HAVE'];

/** DC_ERR_* and DC_ADD_ERR_*: one-byte status payloads. */
export const Status = {
  /** DC_ERR_OK */
  OK: 0x00,
  /** DC_ERR_NOTOK: miss / not found / absent */
  NOTOK: 0x01,
  /** DC_ERR_DISCONNECTED: only a proxy sends it (its upstream died with the request outstanding) */
  DISCONNECTED: 0x02,
  /** DC_ADD_ERR_CORRUPT: id_len >= the bytes left after the 8-byte prefix */
  ADD_CORRUPT: 0x64,
  /** DC_ADD_ERR_MATCHING_SESSION: an unexpired session with this id exists (it is kept) */
  ADD_MATCHING_SESSION: 0x65,
  /** DC_ADD_ERR_TIMEOUT_RANGE: timeout above DC_MAX_EXPIRY */
  ADD_TIMEOUT_RANGE: 0x66,
  /** DC_ADD_ERR_ID_RANGE: id_len 0 or above DC_MAX_ID_LEN */
  ADD_ID_RANGE: 0x67,
  /** DC_ADD_ERR_DATA_RANGE: data above DC_MAX_DATA_LEN */
  ADD_DATA_RANGE: 0x68,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

/** ADD payload prefix: timeout_ms (u32) then id_len (u32). Shorter payloads close the connection. */
export const ADD_PREFIX_SIZE = 8;
/** DC_MAX_EXPIRY: 7 days in ms; exactly this is accepted. */
export const MAX_TIMEOUT_MS = 604_800_000;
/** DC_MAX_ID_LEN: session ids are 1..64 bytes on ADD (lookups do not check). */
export const MAX_ID_LENGTH = 64;
/** DC_MAX_DATA_LEN: session data bytes at most (the real limit is 32768 - 8 - id_len). */
export const MAX_DATA_LENGTH = 32768;

/** Which way a frame travels: requests carry is_response 0, responses 1. */
export type Direction = 'request' | 'response';

/** The three outcomes of every incremental decoder. `offset` is the first bad byte. */
export type Decoded<T> =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'corrupt'; readonly reason: string; readonly offset: number }
  | { readonly kind: 'ok'; readonly value: T; readonly next: number };

export const INCOMPLETE: { readonly kind: 'incomplete' } = Object.freeze({ kind: 'incomplete' });
