// A protocol-3 (pump) test client: builds, for one source file, the request the real
// distcc-pump client sends, for the codec's tests and for requests no real client sends (hostile
// NAMEs and LINKs); good requests come from the real client (real_pump.ts):
//   DIST 3, CDIR cwd, ARGC n, n x ARGV, NFIL k, then k x (NAME abs-path + FILE lzo-bytes | LINK target)
// The files are the source and every header `gcc -M` lists for it outside the compiler's default
// system include dirs, LZO1X-1 compressed with the `lzo` package. Like the include server
// (include_server/compiler_defaults.py) it sends no system header but, for each default system
// dir, a "mirror" LINK: NAME /usr/include + LINK '../' x (20 + depth) + 'usr/include', which climbs
// past the server's temp root to its "/" so re-rooted -I paths reach the server's own headers;
// and zero-length `forcing_technique_271828` FILEs that only force a directory to exist.
//
// Packets are encoded with the engine's codec (src/compile/wire/tokens.ts) and FILE bodies
// compressed with its LZO wrapper (byte-identical to liblzo2's lzo1x_1_compress).
//
// Exports: buildPumpRequest(options) -> { packets, files, mirrors }, encodePackets(packets),
//          listHeaders(argv, cwd), systemIncludeDirs(compiler), mirrorTarget(dir), FORCING_FILE

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import path from 'node:path';
import { encodeBody, encodeInteger } from '../../src/compile/wire/tokens';
import { compressLzo } from '../../src/compile/wire/lzo';

const run = promisify(execFile);

export const FORCING_FILE = 'forcing_technique_271828';

export interface PumpPacket {
  readonly token: 'DIST' | 'CDIR' | 'ARGC' | 'ARGV' | 'NFIL' | 'NAME' | 'FILE' | 'LINK';
  /** Integer tokens: the value. String and bulk tokens: omitted (the body length is sent). */
  readonly value?: number;
  readonly body?: Buffer;
}

export interface PumpRequestOptions {
  /** The client's working directory (sent as CDIR). */
  readonly cwd: string;
  /** The compile command as the client runs it, e.g. ['gcc', '-c', 'main.c', '-o', 'main.o']. */
  readonly argv: readonly string[];
  /** Extra links to send after the files (name -> target, exactly as sent). */
  readonly links?: ReadonlyArray<{ readonly name: string; readonly target: string }>;
  /** Add the /usr/include mirror link and forcing files like real pump traffic (default true). */
  readonly pumpExtras?: boolean;
}

function integer(token: PumpPacket['token'], value: number): PumpPacket {
  return { token, value };
}

function withBody(token: PumpPacket['token'], body: Buffer | string): PumpPacket {
  return { token, body: typeof body === 'string' ? Buffer.from(body) : body };
}

/** Every file `gcc -M` says the compile reads, as absolute normalised paths, the source first. */
export async function listHeaders(argv: readonly string[], cwd: string): Promise<string[]> {
  const args: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '-S' || a === '-MD' || a === '-MMD' || a === '-MG' || a === '-MP') continue;
    if (a === '-o' || a === '-MF' || a === '-MT' || a === '-MQ') { i++; continue; }
    if (a.startsWith('-o') || a.startsWith('-MF') || a.startsWith('-MT') || a.startsWith('-MQ')) continue;
    args.push(a);
  }
  const { stdout } = await run(argv[0]!, ['-M', ...args], { cwd, maxBuffer: 16 * 1024 * 1024 });
  const joined = stdout.replace(/\\\n/g, ' ');
  const deps = joined.slice(joined.indexOf(':') + 1).trim().split(/\s+/).filter((d) => d !== '');
  const seen = new Set<string>();
  for (const d of deps) seen.add(path.resolve(cwd, d.replace(/\\ /g, ' ')));
  return [...seen];
}

/** include_server/basics.py MAX_COMPONENTS_IN_SERVER_ROOT: '..' budget for the server root. */
export const MAX_COMPONENTS_IN_SERVER_ROOT = 20;

/** The compiler's default `#include <...>` search dirs, as `gcc -v` prints them, realpath'd. */
export async function systemIncludeDirs(compiler: string): Promise<string[]> {
  const { stderr } = await run(compiler, ['-x', 'c', '-v', '-E', '/dev/null', '-o', '/dev/null']);
  const m = /#include <\.\.\.> search starts here:\n([^]*?)\nEnd of search list/.exec(stderr);
  if (m === null) throw new Error(`cannot read the search list of ${compiler}`);
  const dirs: string[] = [];
  for (const line of m[1]!.split('\n')) dirs.push(await fs.realpath(line.trim()));
  return dirs;
}

/** The include server's link target for a system dir: enough '..' to reach "/" on the server. */
export function mirrorTarget(dir: string): string {
  const depth = dir.split('/').length - 1;
  return '../'.repeat(MAX_COMPONENTS_IN_SERVER_ROOT + depth) + dir.slice(1);
}

function isUnder(dir: string, file: string): boolean {
  return file === dir || file.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

export async function buildPumpRequest(options: PumpRequestOptions): Promise<{ packets: PumpPacket[]; files: string[]; mirrors: string[] }> {
  const { cwd, argv } = options;
  const extras = options.pumpExtras !== false;
  // One mirror per system dir, shortest first; a dir under an already mirrored one needs none.
  const mirrors: string[] = [];
  if (extras) {
    for (const dir of (await systemIncludeDirs(argv[0]!)).sort((a, b) => a.length - b.length)) {
      if (!mirrors.some((m) => isUnder(m, dir))) mirrors.push(dir);
    }
  }
  const files = (await listHeaders(argv, cwd)).filter((f) => !mirrors.some((m) => isUnder(m, f)));
  const entries: PumpPacket[] = [];
  let count = 0;
  for (const file of files) {
    const content = await fs.readFile(file);
    entries.push(withBody('NAME', file), withBody('FILE', compressLzo(content)));
    count++;
  }
  const links = [...(options.links ?? [])];
  if (extras) {
    for (const dir of mirrors) links.push({ name: dir, target: mirrorTarget(dir) });
    for (const dir of new Set(files.map((f) => path.dirname(f)))) {
      entries.push(withBody('NAME', path.join(dir, 'forcing_dir', FORCING_FILE)), withBody('FILE', Buffer.alloc(0)));
      count++;
    }
  }
  for (const link of links) {
    entries.push(withBody('NAME', link.name), withBody('LINK', link.target));
    count++;
  }
  const packets: PumpPacket[] = [
    integer('DIST', 3),
    withBody('CDIR', cwd),
    integer('ARGC', argv.length),
    ...argv.map((a) => withBody('ARGV', a)),
    integer('NFIL', count),
    ...entries,
  ];
  return { packets, files, mirrors };
}

/** The bytes on the wire, through the engine's encoder. */
export function encodePackets(packets: readonly PumpPacket[]): Buffer {
  const parts: Buffer[] = [];
  for (const p of packets) {
    if (p.token === 'DIST' || p.token === 'ARGC' || p.token === 'NFIL') parts.push(encodeInteger(p.token, p.value ?? 0));
    else parts.push(...encodeBody(p.token, p.body ?? Buffer.alloc(0)));
  }
  return Buffer.concat(parts);
}
