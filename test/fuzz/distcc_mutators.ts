// Damaged distcc streams for the fuzzers (distcc_wire_fuzz, distcc_live_fuzz): the requests
// Debian's distcc 3.4 client really sends (protocols 1 and 2 captured on loopback, protocol 3 built
// the way the pump client builds it) and the answers distccd sends, cut into packets and then
// damaged: bit flips, truncation, duplicated, dropped and reordered packets, huge or limit-edge
// lengths, odd integer values, inserted garbage, packets spliced from another stream, or plain
// random bytes. Every mutation is drawn from one seeded Rng, so a case replays from its number.

import { REQUEST_P1, REQUEST_P2 } from '../support/distcc_golden';
import { compressLzo } from '../../src/compile/wire/lzo';
import { encodeResponse } from '../../src/compile/wire/response';
import { BULK_TOKENS, DEFAULT_LIMITS, encodeBody, encodeInteger, HEADER_LENGTH, INTEGER_TOKENS, STRING_TOKENS, type Token, type WireLimits } from '../../src/compile/wire/tokens';
import type { Rng } from './rng';

const ALL_TOKENS: readonly Token[] = [...INTEGER_TOKENS, ...STRING_TOKENS, ...BULK_TOKENS];

/** A protocol-3 request as the pump client sends it: a source, a header, a mirror LINK, a forcing file. */
export function pumpRequest(cwd = '/home/u/p'): Buffer {
  const argv = ['x86_64-linux-gnu-gcc', '-c', `${cwd}/t.c`, '-o', 't.o', '-I', `${cwd}/inc`];
  return Buffer.concat([
    encodeInteger('DIST', 3),
    ...encodeBody('CDIR', cwd),
    encodeInteger('ARGC', argv.length),
    ...argv.flatMap((a) => encodeBody('ARGV', a)),
    encodeInteger('NFIL', 4),
    ...encodeBody('NAME', `${cwd}/t.c`),
    ...encodeBody('FILE', compressLzo(Buffer.from('#include "h.h"\nint f(int x){return x+H;}\n'))),
    ...encodeBody('NAME', `${cwd}/inc/h.h`),
    ...encodeBody('FILE', compressLzo(Buffer.from('#define H 1\n'))),
    ...encodeBody('NAME', '/usr/include'),
    ...encodeBody('LINK', '../../../usr/include'),
    ...encodeBody('NAME', `${cwd}/inc/forcing_technique_271828`),
    ...encodeBody('FILE', Buffer.alloc(0)),
  ]);
}

export const PUMP_REQUEST = pumpRequest();

/** The answers a client decodes (protocol 1, 2 and 3, success and failure). */
export const RESPONSES: readonly Buffer[] = [
  Buffer.concat(encodeResponse({ version: 1, status: 0, stderr: Buffer.alloc(0), stdout: Buffer.alloc(0), object: Buffer.from('\x7fELF object bytes') })),
  Buffer.concat(encodeResponse({ version: 2, status: 0x300, stderr: Buffer.from('err\n'), stdout: Buffer.from('out\n'), object: Buffer.alloc(0) })),
  Buffer.concat(encodeResponse({ version: 3, status: 0, stderr: Buffer.from('warn\n'), stdout: Buffer.alloc(0), object: Buffer.from('OBJ'.repeat(40)), depfile: Buffer.from('t.o: t.c h.h\n') })),
];

export const REQUESTS: readonly Buffer[] = [REQUEST_P1, REQUEST_P2, PUMP_REQUEST];

/** Tight limits, so the limit checks are reached by small inputs. */
export const TIGHT_LIMITS: WireLimits = Object.freeze({
  maxArgc: 6, maxArgvLength: 24, maxArgvTotal: 64, maxPathLength: 32, maxFiles: 3,
  maxDotiLength: 96, maxFileLength: 48, maxFilesTotal: 80, maxOutputLength: 64,
});

/** Cuts a well-formed stream into its packets (header + body). */
export function packetsOf(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at + HEADER_LENGTH <= stream.length) {
    const token = stream.toString('latin1', at, at + 4) as Token;
    const digits = stream.toString('latin1', at + 4, at + HEADER_LENGTH);
    if (!/^[0-9a-fA-F]{8}$/.test(digits)) break; // a damaged header: the rest is one piece
    const param = Number.parseInt(digits, 16);
    const isInteger = (INTEGER_TOKENS as readonly string[]).includes(token);
    const end = at + HEADER_LENGTH + (isInteger ? 0 : param);
    out.push(stream.subarray(at, end));
    at = end;
  }
  if (at < stream.length) out.push(stream.subarray(at));
  return out;
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/** A new header param: around the limits, huge, zero, or random. */
function oddParam(rng: Rng, limits: WireLimits): number {
  const edges = [0, 1, 2, 3, 4, limits.maxArgc, limits.maxArgc + 1, limits.maxArgvLength, limits.maxArgvLength + 1, limits.maxPathLength + 1,
    limits.maxFiles + 1, limits.maxDotiLength, limits.maxDotiLength + 1, limits.maxFileLength + 1, 0x7fffffff, 0xffffffff, 0x10000000];
  return rng.chance(0.7) ? rng.pick(edges) : rng.chance(0.5) ? rng.below(64) : rng.u32();
}

function mutatePackets(rng: Rng, packets: Buffer[], limits: WireLimits, donors: readonly Buffer[]): Buffer[] {
  const p = [...packets];
  if (p.length === 0) return [Buffer.from(rng.pick(INTEGER_TOKENS) + hex8(oddParam(rng, limits)), 'latin1')];
  const i = rng.below(p.length);
  switch (rng.below(8)) {
    case 0: // duplicate a packet
      p.splice(i, 0, p[i]!);
      break;
    case 1: // drop a packet
      p.splice(i, 1);
      break;
    case 2: { // swap two packets
      const j = rng.below(p.length);
      [p[i], p[j]] = [p[j]!, p[i]!];
      break;
    }
    case 3: { // a header keeps its body but claims another length or value
      const h = Buffer.from(p[i]!);
      if (h.length >= HEADER_LENGTH) h.write(hex8(oddParam(rng, limits)), 4, 'latin1');
      p[i] = h;
      break;
    }
    case 4: { // another token on the same header
      const h = Buffer.from(p[i]!);
      h.write(rng.pick(ALL_TOKENS), 0, 'latin1');
      p[i] = h;
      break;
    }
    case 5: // a packet from another stream
      p.splice(i, 0, rng.pick(packetsOf(rng.pick(donors))));
      break;
    case 6: // a fresh packet with an odd value or a body around a limit
      if (rng.chance(0.5)) p.splice(i, 0, Buffer.from(rng.pick(INTEGER_TOKENS) + hex8(oddParam(rng, limits)), 'latin1'));
      else p.splice(i, 0, Buffer.concat(encodeBody(rng.pick([...STRING_TOKENS, ...BULK_TOKENS]), rng.chance(0.3) ? Buffer.from('a\0b') : rng.bytes(rng.pick([1, 31, 32, 33, 47, 48, 49, 64, 65, 100])))));
      break;
    default: // uppercase hex (legal) or a bad hex digit
      if (p[i]!.length >= HEADER_LENGTH) {
        const h = Buffer.from(p[i]!);
        const at = 4 + rng.below(8);
        h[at] = rng.chance(0.5) ? Buffer.from(String.fromCharCode(h[at]!).toUpperCase(), 'latin1')[0]! : rng.pick([0x67, 0x20, 0x2d, 0x00, 0xff]);
        p[i] = h;
      }
  }
  return p;
}

function mutateBytes(rng: Rng, input: Buffer): Buffer {
  const b = Buffer.from(input);
  switch (rng.below(4)) {
    case 0: { // bit flips
      const flips = 1 + rng.below(4);
      for (let k = 0; k < flips && b.length > 0; k++) b[rng.below(b.length)] ^= 1 << rng.below(8);
      return b;
    }
    case 1: // truncation
      return b.subarray(0, rng.below(b.length + 1));
    case 2: { // inserted garbage
      const at = rng.below(b.length + 1);
      return Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.below(16)), b.subarray(at)]);
    }
    default: { // a byte overwritten
      if (b.length > 0) b[rng.below(b.length)] = rng.u32() & 0xff;
      return b;
    }
  }
}

/** One damaged request (or, with `response`, answer) stream. 1 in 20 is random bytes. */
export function fuzzDistccStream(rng: Rng, options: { response?: boolean; limits?: WireLimits } = {}): Buffer {
  const seeds = options.response === true ? RESPONSES : REQUESTS;
  const limits = options.limits ?? DEFAULT_LIMITS;
  if (rng.chance(0.05)) return rng.bytes(rng.below(200));
  let packets = packetsOf(rng.pick(seeds));
  const rounds = rng.chance(0.1) ? 0 : 1 + rng.below(3);
  for (let r = 0; r < rounds; r++) {
    packets = rng.chance(0.6) ? mutatePackets(rng, packets, limits, seeds) : packetsOf(mutateBytes(rng, Buffer.concat(packets)));
  }
  return Buffer.concat(packets);
}

/** Random chunk boundaries (1..64 bytes, sometimes 1 byte each). */
export function randomChunks(rng: Rng, input: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const tiny = rng.chance(0.2);
  for (let at = 0; at < input.length; ) {
    const n = tiny ? 1 : 1 + rng.below(64);
    out.push(Buffer.from(input.subarray(at, at + n)));
    at += n;
  }
  return out;
}
