// LZO bodies for protocols 2 and 3 (C: dcc_r_bulk_lzo1x / dcc_x_file_lzo1x in compress.c): raw
// LZO1X-1 streams, no header, no length, no checksum, ending in 11 00 00. The receiver is not
// told the decompressed size, so like the C code we start at 8x the compressed size and double
// on LZO_E_OUTPUT_OVERRUN, but never past a named maximum (a 4 KiB body must not make us
// allocate gigabytes). Empty bodies travel as length 0 and are never handed to LZO.

import * as lzo from 'lzo';
import { DistkitError } from '../../errors';

/** Largest decompressed body we accept (DOTI of a huge translation unit, one pump FILE). */
export const MAX_LZO_OUTPUT = 512 * 1024 * 1024;
/** C: the first guess is 8 times the compressed size. */
export const LZO_FIRST_GUESS_FACTOR = 8;

/** Compresses `data` with LZO1X-1; byte-identical to liblzo2's lzo1x_1_compress. */
export function compressLzo(data: Uint8Array): Buffer {
  if (data.byteLength === 0) return Buffer.alloc(0);
  return lzo.compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** Decompresses one raw LZO1X stream; throws DistkitError('lzo-corrupt' | 'lzo-too-large'). */
export function decompressLzo(data: Uint8Array, options: { maxOutput?: number } = {}): Buffer {
  const maxOutput = options.maxOutput ?? MAX_LZO_OUTPUT;
  if (data.byteLength === 0) return Buffer.alloc(0);
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let size = Math.min(Math.max(input.length * LZO_FIRST_GUESS_FACTOR, 64), maxOutput);
  for (;;) {
    try {
      return lzo.decompress(input, size);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!message.includes('LZO_E_OUTPUT_OVERRUN')) {
        throw new DistkitError('lzo-corrupt', `LZO body of ${input.length} bytes is corrupt (${message.replace(/^.*code: /, '')})`);
      }
      if (size >= maxOutput) {
        throw new DistkitError('lzo-too-large', `LZO body of ${input.length} bytes expands beyond the limit of ${maxOutput} bytes`);
      }
      size = Math.min(size * 2, maxOutput);
    }
  }
}
