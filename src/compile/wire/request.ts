// Decodes one distcc compile request, incrementally, as the bytes arrive (C: dcc_r_request_header,
// dcc_r_argv, dcc_r_cwd, dcc_r_many_files in serve.c/rpc.c):
//
//   protocol 0/1/2   DIST v  ARGC n  n x ARGV  DOTI (plain in 0/1, LZO in 2)
//   protocol 3       DIST 3  CDIR  ARGC n  n x ARGV  NFIL k  k x (NAME + (FILE lzo | LINK target))
//
// The decoder says which token must come next, so garbage is refused at its first byte, and it
// refuses values that can never make a valid request as soon as they are read (DIST above 3,
// ARGC 0 or above the limit, a NUL inside an argument). The C server crashes on ARGC 0; we say so.
// Bodies (DOTI, FILE) are views of the chunks as received, or one copy where a body spans chunks
// (packet_buffer.ts): the caller hands its chunks over and must not change them afterwards.

import { PacketBuffer } from './packet_buffer';
import { DEFAULT_LIMITS, type Decoded, type Packet, type Token, type WireLimits } from './tokens';

/** DIST versions a client may send; 0 is treated as 1, as distcc 3.4 does. */
export const MAX_PROTOCOL_VERSION = 3;

export type PumpEntry =
  | { readonly kind: 'file'; readonly name: string; /** LZO bytes as sent */ readonly body: Buffer }
  | { readonly kind: 'link'; readonly name: string; readonly target: string };

export interface CompileRequest {
  /** DIST as sent (0..3): echoed in DONE. */
  readonly version: number;
  /** 1 plain, 2 LZO, 3 pump. */
  readonly protocol: 1 | 2 | 3;
  readonly argv: readonly string[];
  /** Protocols 1/2: the preprocessed source as sent (LZO-compressed in protocol 2). */
  readonly doti?: Buffer;
  /** Protocol 3: the client's working directory (CDIR). */
  readonly cwd?: string;
  /** Protocol 3: the files the include server found. */
  readonly files?: readonly PumpEntry[];
}

type State = 'DIST' | 'CDIR' | 'ARGC' | 'ARGV' | 'DOTI' | 'NFIL' | 'NAME' | 'ENTRY' | 'done' | 'failed';

const EXPECT: Record<State, readonly Token[]> = {
  DIST: ['DIST'], CDIR: ['CDIR'], ARGC: ['ARGC'], ARGV: ['ARGV'], DOTI: ['DOTI'],
  NFIL: ['NFIL'], NAME: ['NAME'], ENTRY: ['FILE', 'LINK'], done: [], failed: [],
};

export class RequestDecoder {
  readonly #limits: WireLimits;
  readonly #buffer: PacketBuffer;
  #state: State = 'DIST';
  #version = 0;
  #argc = 0;
  #argvBytes = 0;
  #argv: string[] = [];
  #cwd: string | undefined;
  #nfil = 0;
  #doti: Buffer | undefined;
  #fileBytes = 0;
  #name = '';
  #files: PumpEntry[] = [];

  constructor(limits: WireLimits = DEFAULT_LIMITS) {
    this.#limits = limits;
    this.#buffer = new PacketBuffer(limits);
  }

  /** What the decoder waits for, for log lines ("ARGV 3 of 5", "DOTI"). */
  get waitingFor(): string {
    if (this.#state === 'ARGV') return `ARGV ${this.#argv.length + 1} of ${this.#argc}`;
    if (this.#state === 'NAME' || this.#state === 'ENTRY') return `file ${this.#files.length + 1} of ${this.#nfil}`;
    return this.#state;
  }

  /** DIST as read (0 before it arrives). */
  get version(): number {
    return this.#version;
  }

  /** True once every ARGV has arrived (the job's command line is known; DOTI or files follow). */
  get argvComplete(): boolean {
    return this.#argc > 0 && this.#argv.length === this.#argc;
  }

  /** The arguments read so far (for the log line of a refused or abandoned job). */
  get argv(): readonly string[] {
    return this.#argv;
  }

  /**
   * Feeds bytes; `next` of an ok result is how many bytes of this chunk the request used. The
   * chunk is kept, not copied (the request's bodies may be views of it): do not change it later.
   */
  push(chunk: Uint8Array): Decoded<CompileRequest> {
    if (this.#state === 'done' || this.#state === 'failed') throw new Error('RequestDecoder already finished');
    this.#buffer.append(chunk);
    for (;;) {
      const result = this.#buffer.next(EXPECT[this.#state]);
      if (result.kind !== 'ok') {
        if (result.kind === 'corrupt') this.#state = 'failed';
        return result;
      }
      const refused = this.#accept(result.value);
      if (refused !== undefined) {
        this.#state = 'failed';
        return { kind: 'corrupt', reason: refused };
      }
      if ((this.#state as State) === 'done') {
        return { kind: 'ok', value: this.#finish(), next: Math.max(0, chunk.length - this.#buffer.pending) };
      }
    }
  }

  #accept(packet: Packet): string | undefined {
    const { param, body } = packet;
    switch (this.#state) {
      case 'DIST':
        if (param > MAX_PROTOCOL_VERSION) return `DIST ${param}: unsupported protocol version (this server speaks 1, 2 and 3)`;
        this.#version = param;
        this.#state = param === 3 ? 'CDIR' : 'ARGC';
        return undefined;
      case 'CDIR': {
        const cwd = textOf('CDIR', body!);
        if (cwd instanceof Error) return cwd.message;
        this.#cwd = cwd;
        this.#state = 'ARGC';
        return undefined;
      }
      case 'ARGC':
        if (param === 0) return 'ARGC 0: the request has no command line';
        if (param > this.#limits.maxArgc) return `ARGC ${param} exceeds the limit of ${this.#limits.maxArgc} arguments`;
        this.#argc = param;
        this.#state = 'ARGV';
        return undefined;
      case 'ARGV': {
        this.#argvBytes += param;
        if (this.#argvBytes > this.#limits.maxArgvTotal) {
          return `ARGV total length exceeds the limit of ${this.#limits.maxArgvTotal} bytes`;
        }
        const arg = textOf('ARGV', body!);
        if (arg instanceof Error) return arg.message;
        this.#argv.push(arg);
        if (this.#argv.length === this.#argc) this.#state = this.#version === 3 ? 'NFIL' : 'DOTI';
        return undefined;
      }
      case 'DOTI':
        this.#doti = body!;
        this.#state = 'done';
        return undefined;
      case 'NFIL':
        if (param > this.#limits.maxFiles) return `NFIL ${param} exceeds the limit of ${this.#limits.maxFiles} files`;
        this.#nfil = param;
        this.#state = param === 0 ? 'done' : 'NAME';
        return undefined;
      case 'NAME': {
        const name = textOf('NAME', body!);
        if (name instanceof Error) return name.message;
        this.#name = name;
        this.#state = 'ENTRY';
        return undefined;
      }
      case 'ENTRY': {
        if (packet.token === 'FILE') {
          this.#fileBytes += param;
          if (this.#fileBytes > this.#limits.maxFilesTotal) {
            return `FILE total length exceeds the limit of ${this.#limits.maxFilesTotal} bytes`;
          }
          this.#files.push({ kind: 'file', name: this.#name, body: body! });
        } else {
          const target = textOf('LINK', body!);
          if (target instanceof Error) return target.message;
          this.#files.push({ kind: 'link', name: this.#name, target });
        }
        this.#state = this.#files.length === this.#nfil ? 'done' : 'NAME';
        return undefined;
      }
      default:
        return `unexpected ${packet.token}`;
    }
  }

  #finish(): CompileRequest {
    const protocol = this.#version === 3 ? 3 : this.#version === 2 ? 2 : 1;
    return protocol === 3
      ? { version: this.#version, protocol, argv: this.#argv, cwd: this.#cwd, files: this.#files }
      : { version: this.#version, protocol, argv: this.#argv, doti: this.#doti };
  }
}

/**
 * Strings travel as raw bytes. A NUL could never reach exec() or a path, and bytes that are not
 * UTF-8 cannot be handed to the compiler unchanged (Node passes arguments as UTF-8): both are
 * refused rather than compiling something other than what the client asked for.
 */
function textOf(token: string, body: Buffer): string | Error {
  if (body.includes(0)) return new Error(`${token} contains a NUL byte`);
  const text = body.toString('utf8');
  if (text.includes('\ufffd') && !Buffer.from(text, 'utf8').equals(body)) {
    return new Error(`${token} ${JSON.stringify(text.slice(0, 80))} is not valid UTF-8, which this server cannot pass on unchanged`);
  }
  return text;
}
