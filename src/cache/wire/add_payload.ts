// The ADD request payload: timeout_ms (u32) ‖ id_len (u32) ‖ id ‖ data, all big-endian. Decoding
// applies the C server's checks in its order, the first failure deciding the status byte; the
// duplicate check (0x65) belongs to the store and comes after all of these.

import {
  ADD_PREFIX_SIZE,
  MAX_DATA_LENGTH,
  MAX_ID_LENGTH,
  MAX_PAYLOAD,
  MAX_TIMEOUT_MS,
  Status,
} from './constants';

export interface AddRequest {
  readonly timeoutMs: number;
  /** Views into the payload: copy to keep. */
  readonly id: Buffer;
  readonly data: Buffer;
}

export type AddDecoded =
  /** Payload under 8 bytes: the server closes the connection without a response. */
  | { readonly kind: 'short'; readonly length: number }
  | { readonly kind: 'rejected'; readonly status: Status; readonly reason: string }
  | { readonly kind: 'ok'; readonly value: AddRequest };

export function decodeAddPayload(payload: Buffer): AddDecoded {
  if (payload.length < ADD_PREFIX_SIZE) return { kind: 'short', length: payload.length };
  const timeoutMs = payload.readUInt32BE(0);
  const idLength = payload.readUInt32BE(4);
  const remaining = payload.length - ADD_PREFIX_SIZE;
  if (timeoutMs > MAX_TIMEOUT_MS) {
    return { kind: 'rejected', status: Status.ADD_TIMEOUT_RANGE, reason: `timeout ${timeoutMs} ms above ${MAX_TIMEOUT_MS}` };
  }
  if (idLength >= remaining) {
    return { kind: 'rejected', status: Status.ADD_CORRUPT, reason: `id_len ${idLength} leaves no data in ${remaining} bytes` };
  }
  if (idLength === 0 || idLength > MAX_ID_LENGTH) {
    return { kind: 'rejected', status: Status.ADD_ID_RANGE, reason: `id_len ${idLength} not in 1..${MAX_ID_LENGTH}` };
  }
  const dataLength = remaining - idLength;
  if (dataLength > MAX_DATA_LENGTH) {
    // Unreachable through a 32768-byte message; kept because the C server checks it.
    return { kind: 'rejected', status: Status.ADD_DATA_RANGE, reason: `data ${dataLength} bytes above ${MAX_DATA_LENGTH}` };
  }
  const idStart = ADD_PREFIX_SIZE;
  return {
    kind: 'ok',
    value: {
      timeoutMs,
      id: payload.subarray(idStart, idStart + idLength),
      data: payload.subarray(idStart + idLength),
    },
  };
}

/** Builds an ADD payload; RangeError when the result could not travel or would be refused. */
export function encodeAddPayload(request: { timeoutMs: number; id: Uint8Array; data: Uint8Array }): Buffer {
  const { timeoutMs, id, data } = request;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 0xffffffff) {
    throw new RangeError(`ADD timeout ${timeoutMs} ms is not a 32-bit unsigned integer`);
  }
  const length = ADD_PREFIX_SIZE + id.length + data.length;
  if (length > MAX_PAYLOAD) {
    throw new RangeError(
      `ADD of a ${id.length}-byte id and ${data.length} bytes of data needs ${length} bytes, above the ${MAX_PAYLOAD}-byte message limit`,
    );
  }
  const out = Buffer.allocUnsafe(length);
  out.writeUInt32BE(timeoutMs, 0);
  out.writeUInt32BE(id.length, 4);
  out.set(id, ADD_PREFIX_SIZE);
  out.set(data, ADD_PREFIX_SIZE + id.length);
  return out;
}
