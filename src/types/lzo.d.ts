// Types for the npm `lzo` binding (miniLZO: lzo1x_1_compress and lzo1x_decompress_safe).
declare module 'lzo' {
  export function compress(input: Buffer): Buffer;
  /** Throws Error('Decompression failed with code: LZO_E_...') on failure. */
  export function decompress(input: Buffer, length?: number): Buffer;
  export const version: string;
  export const versionDate: string;
}
