// A raw distcc client on our codec, for requests the real client never sends (malformed, refused
// compilers, protocol 3 without the broken Debian pump): it writes bytes, reads the answer with
// ResponseDecoder, and reports whether the server closed without answering.

import net from 'node:net';
import { ResponseDecoder, type CompileResponse } from '../../src/compile/wire/response';
import { compressLzo } from '../../src/compile/wire/lzo';
import { encodeBody, encodeInteger } from '../../src/compile/wire/tokens';

export type RawAnswer =
  | { readonly kind: 'answer'; readonly response: CompileResponse }
  | { readonly kind: 'closed'; readonly bytes: Buffer }
  | { readonly kind: 'corrupt'; readonly reason: string; readonly bytes: Buffer };

/** A protocol 1 or 2 request: DIST ARGC ARGV... DOTI (compressed for version 2). */
export function encodeRequest(version: number, argv: readonly string[], source: Buffer | string): Buffer {
  const text = typeof source === 'string' ? Buffer.from(source) : source;
  return Buffer.concat([
    encodeInteger('DIST', version),
    encodeInteger('ARGC', argv.length),
    ...argv.flatMap((a) => encodeBody('ARGV', a)),
    ...encodeBody('DOTI', version === 2 ? compressLzo(text) : text),
  ]);
}

export interface RawOptions {
  /** Destroy the socket this many ms after sending (a client that gives up). */
  readonly abandonAfterMs?: number;
  /** Give up waiting after this long (default 30 s). */
  readonly timeoutMs?: number;
  /** Send the first `offset` bytes, wait for `until`, then the rest (a client still preprocessing). */
  readonly pause?: { readonly offset: number; readonly until: () => Promise<void> };
}

/** Sends `bytes` to 127.0.0.1:port and reads until the answer is complete or the server closes. */
export function sendRaw(port: number, bytes: Buffer, options: RawOptions = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const decoder = new ResponseDecoder();
    const seen: Buffer[] = [];
    let done = false;
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      const pause = options.pause;
      if (pause === undefined) socket.write(bytes);
      else {
        socket.write(bytes.subarray(0, pause.offset));
        pause.until().then(() => socket.write(bytes.subarray(pause.offset)), (error: Error) => {
          socket.destroy();
          if (!done) reject(error);
          done = true;
        });
      }
      if (options.abandonAfterMs !== undefined) {
        setTimeout(() => {
          finish({ kind: 'closed', bytes: Buffer.concat(seen) });
          socket.destroy();
        }, options.abandonAfterMs);
      }
    });
    const timer = setTimeout(() => {
      socket.destroy();
      if (!done) reject(new Error(`no answer within ${options.timeoutMs ?? 30000} ms`));
      done = true;
    }, options.timeoutMs ?? 30_000);
    const finish = (answer: RawAnswer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    socket.on('data', (chunk: Buffer) => {
      seen.push(chunk);
      const r = decoder.push(chunk);
      if (r.kind === 'ok') finish({ kind: 'answer', response: r.value });
      else if (r.kind === 'corrupt') finish({ kind: 'corrupt', reason: r.reason, bytes: Buffer.concat(seen) });
    });
    socket.on('error', () => finish({ kind: 'closed', bytes: Buffer.concat(seen) }));
    socket.on('close', () => finish({ kind: 'closed', bytes: Buffer.concat(seen) }));
  });
}
