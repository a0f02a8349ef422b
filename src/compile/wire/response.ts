// The answer to a compile request (C: dcc_x_result_header, dcc_x_cc_status, dcc_x_file in
// serve.c), in this order:
//
//   DONE version   STAT wait-status   SERR stderr   SOUT stdout   DOTO object   [DOTD deps]
//
// DONE echoes the client's DIST. Bulk bodies are LZO-compressed in protocols 2 and 3; empty
// bodies are sent as length 0 either way. STAT != 0 sends DOTO00000000 and no DOTD; DOTD only
// exists in protocol 3 after a successful compile. ResponseDecoder is the client side (tests,
// tools): it reads the same sequence back, incrementally.

import { compressLzo, decompressLzo } from './lzo';
import { PacketBuffer } from './packet_buffer';
import { DEFAULT_LIMITS, encodeBody, encodeInteger, type Decoded, type Token, type WireLimits } from './tokens';

export interface CompileResponse {
  /** The DIST version of the request. */
  readonly version: number;
  /** Raw wait status (exit << 8 | signal). */
  readonly status: number;
  readonly stderr: Buffer;
  readonly stdout: Buffer;
  readonly object: Buffer;
  /** Protocol 3, status 0: the cleaned dependency file. */
  readonly depfile?: Buffer;
  /** Protocols 2/3: the bodies above are LZO1X-compressed already, as sent (an object-cache hit keeps them so). */
  readonly compressed?: boolean;
}

/** Whether the answer to DIST `version` carries its bodies LZO-compressed. */
export function compressedFor(version: number): boolean {
  return version === 2 || version === 3;
}

/** The whole answer as a list of buffers to write in order (bodies are not copied). */
export function encodeResponse(response: CompileResponse): Buffer[] {
  const lzo = compressedFor(response.version);
  if (response.compressed === true && !lzo) throw new RangeError(`compressed bodies in an answer to DIST ${response.version}, which sends them plain`);
  const body = (data: Buffer): Buffer => (lzo && response.compressed !== true ? compressLzo(data) : data);
  const out: Buffer[] = [
    encodeInteger('DONE', response.version),
    encodeInteger('STAT', response.status),
    ...encodeBody('SERR', body(response.stderr)),
    ...encodeBody('SOUT', body(response.stdout)),
  ];
  if (response.status !== 0) {
    out.push(...encodeBody('DOTO', Buffer.alloc(0)));
    return out;
  }
  out.push(...encodeBody('DOTO', body(response.object)));
  if (response.version === 3) out.push(...encodeBody('DOTD', body(response.depfile ?? Buffer.alloc(0))));
  return out;
}

type Step = 'DONE' | 'STAT' | 'SERR' | 'SOUT' | 'DOTO' | 'DOTD' | 'done';

export class ResponseDecoder {
  readonly #buffer: PacketBuffer;
  #step: Step = 'DONE';
  #version = 0;
  #status = 0;
  #bodies: Buffer[] = [];

  constructor(limits: WireLimits = DEFAULT_LIMITS) {
    this.#buffer = new PacketBuffer(limits);
  }

  push(chunk: Uint8Array): Decoded<CompileResponse> {
    this.#buffer.append(chunk);
    for (;;) {
      if (this.#step === 'done') return { kind: 'ok', value: this.#finish(), next: chunk.length - this.#buffer.pending };
      const result = this.#buffer.next([this.#step as Token]);
      if (result.kind !== 'ok') return result;
      const { param, body } = result.value;
      switch (this.#step) {
        case 'DONE':
          this.#version = param;
          this.#step = 'STAT';
          break;
        case 'STAT':
          this.#status = param;
          this.#step = 'SERR';
          break;
        case 'SERR':
        case 'SOUT':
        case 'DOTO':
        case 'DOTD':
          try {
            this.#bodies.push(compressedFor(this.#version) ? decompressLzo(body!) : Buffer.from(body!));
          } catch (error) {
            return { kind: 'corrupt', reason: `${this.#step}: ${(error as Error).message}` };
          }
          this.#step =
            this.#step === 'SERR' ? 'SOUT'
            : this.#step === 'SOUT' ? 'DOTO'
            : this.#step === 'DOTO' && this.#version === 3 && this.#status === 0 ? 'DOTD'
            : 'done';
          break;
      }
    }
  }

  #finish(): CompileResponse {
    const [stderr, stdout, object, depfile] = this.#bodies;
    return { version: this.#version, status: this.#status, stderr: stderr!, stdout: stdout!, object: object!, depfile };
  }
}
