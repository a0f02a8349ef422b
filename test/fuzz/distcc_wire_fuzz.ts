// The distcc token codec fuzzer (`npm run fuzz -- --target distcc`). Each case feeds one damaged
// stream (see distcc_mutators: captured protocol 1/2 requests, a protocol 3 pump request, or an
// answer) to a RequestDecoder (or ResponseDecoder) whole and in random chunks (and, for one case
// in 64, split at every offset and byte by byte), decodes every LZO body the server would decode,
// and checks:
// - nothing throws: the codec refuses only through its own corrupt result (LZO: DistkitError);
// - the limits hold (default limits, or tight ones in 1 case of 3 so small inputs reach them): an
//   accepted request has 1..maxArgc arguments each within maxArgvLength and maxArgvTotal together,
//   paths within maxPathLength, at most maxFiles files within maxFileLength and maxFilesTotal, a
//   DOTI within maxDotiLength; an incomplete result always asks for at least one more byte;
// - progress: a decoder that said ok or corrupt is never fed again, and feeding ends after at most
//   one push per chunk; a case slower than HANG_MS is a hang (a loop that consumes nothing);
// - split-proof: every way of chunking the same bytes gives the same verdict, request and offset.

import { DistkitError } from '../../src/errors';
import { decompressLzo } from '../../src/compile/wire/lzo';
import { RequestDecoder, type CompileRequest } from '../../src/compile/wire/request';
import { ResponseDecoder, type CompileResponse } from '../../src/compile/wire/response';
import { DEFAULT_LIMITS, type Decoded, type WireLimits } from '../../src/compile/wire/tokens';
import { fuzzDistccStream, randomChunks, TIGHT_LIMITS } from './distcc_mutators';
import { runInProcessCases, type CaseOutcome as SharedCaseOutcome, type FuzzTarget } from './fuzz_target';
import { Rng } from './rng';

export const HANG_MS = 2000;
/** Most bytes an LZO body may expand to in the fuzzer (the daemon allows 512 MiB). */
const FUZZ_LZO_MAX = 1 << 20;

export class Violation extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Violation(message);
}

function fnv(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

type Verdict = 'ok' | 'corrupt' | 'incomplete';

function checkRequest(r: CompileRequest, limits: WireLimits): string {
  check(r.version >= 0 && r.version <= 3, `accepted DIST ${r.version}`);
  check(r.argv.length >= 1 && r.argv.length <= limits.maxArgc, `accepted ${r.argv.length} arguments`);
  let total = 0;
  for (const a of r.argv) {
    const n = Buffer.byteLength(a);
    check(n <= limits.maxArgvLength, `accepted a ${n}-byte argument`);
    check(!a.includes('\0'), 'accepted a NUL in an argument');
    total += n;
  }
  check(total <= limits.maxArgvTotal, `accepted ${total} argument bytes`);
  const lzo = (body: Buffer, what: string): void => {
    try {
      decompressLzo(body, { maxOutput: FUZZ_LZO_MAX });
    } catch (error) {
      check(error instanceof DistkitError && (error.code === 'lzo-corrupt' || error.code === 'lzo-too-large'), `${what}: LZO threw ${String(error)}`);
    }
  };
  if (r.protocol === 3) {
    check(r.doti === undefined && r.cwd !== undefined && r.files !== undefined, 'protocol 3 request without CDIR/files');
    check(Buffer.byteLength(r.cwd) <= limits.maxPathLength, 'CDIR above the path limit');
    check(r.files.length <= limits.maxFiles, `accepted ${r.files.length} files`);
    let bytes = 0;
    for (const f of r.files) {
      check(Buffer.byteLength(f.name) <= limits.maxPathLength && !f.name.includes('\0'), 'NAME above the path limit or with a NUL');
      if (f.kind === 'file') {
        check(f.body.length <= limits.maxFileLength, `accepted a ${f.body.length}-byte FILE`);
        bytes += f.body.length;
        lzo(f.body, 'FILE');
      } else {
        check(Buffer.byteLength(f.target) <= limits.maxPathLength && !f.target.includes('\0'), 'LINK above the path limit or with a NUL');
      }
    }
    check(bytes <= limits.maxFilesTotal, `accepted ${bytes} FILE bytes`);
    return `${r.version}|${r.cwd}|${r.argv.join('\u0001')}|${r.files.map((f) => (f.kind === 'file' ? `${f.name}=${fnv(f.body)}` : `${f.name}->${f.target}`)).join(',')}`;
  }
  check(r.doti !== undefined && r.doti.length <= limits.maxDotiLength, 'DOTI missing or above its limit');
  if (r.protocol === 2) lzo(r.doti, 'DOTI');
  return `${r.version}|${r.argv.join('\u0001')}|${fnv(r.doti)}`;
}

function checkResponse(r: CompileResponse, limits: WireLimits): string {
  for (const b of [r.stderr, r.stdout, r.object]) check(b !== undefined, 'response misses a body');
  check(r.stderr.length <= FUZZ_LZO_MAX * 2 && r.object.length <= Math.max(limits.maxOutputLength, 512 * 1024 * 1024), 'response body beyond bounds');
  return `${r.version}|${r.status}|${fnv(r.stderr)}|${fnv(r.stdout)}|${fnv(r.object)}|${r.depfile === undefined ? '-' : fnv(r.depfile)}`;
}

/** Feeds `pieces` to a fresh decoder; the verdict, the value's fingerprint and where it ended. */
function feed(pieces: readonly Buffer[], response: boolean, limits: WireLimits): string {
  const decoder = response ? new ResponseDecoder(limits) : new RequestDecoder(limits);
  let consumed = 0;
  let pushes = 0;
  for (const piece of pieces) {
    pushes++;
    check(pushes <= pieces.length, 'more pushes than chunks');
    const r: Decoded<CompileRequest | CompileResponse> = decoder.push(piece);
    if (r.kind === 'incomplete') {
      check(Number.isSafeInteger(r.needed) && r.needed >= 1, `incomplete asks for ${r.needed} bytes`);
      consumed += piece.length;
      continue;
    }
    if (r.kind === 'corrupt') {
      check(typeof r.reason === 'string' && r.reason.length > 0 && r.reason.length < 400, `corrupt reason ${JSON.stringify(r.reason)}`);
      return `corrupt|${r.reason}`;
    }
    check(r.next >= 0 && r.next <= piece.length, `ok next ${r.next} outside a ${piece.length}-byte chunk`);
    const fingerprint = response ? checkResponse(r.value as CompileResponse, limits) : checkRequest(r.value as CompileRequest, limits);
    return `ok@${consumed + r.next}|${fingerprint}`;
  }
  return 'incomplete';
}

export type CaseOutcome = SharedCaseOutcome<{ readonly verdict: Verdict }>;

/** Runs case `index` of run `seed`. Never throws. */
export function runDistccWireCase(seed: number, index: number): CaseOutcome {
  const rng = new Rng(seed, index);
  const response = rng.chance(0.15);
  const limits = rng.chance(1 / 3) ? TIGHT_LIMITS : DEFAULT_LIMITS;
  let input: Buffer = Buffer.alloc(0);
  let verdict: Verdict = 'incomplete';
  const started = performance.now();
  try {
    input = fuzzDistccStream(rng, { response, limits });
    const whole = feed([input], response, limits);
    verdict = whole.slice(0, whole.indexOf('|') < 0 ? undefined : whole.indexOf('|')).replace(/@.*/, '') as Verdict;
    const chunked = feed(randomChunks(rng, input), response, limits);
    check(chunked === whole, `chunked feed differs: ${chunked.slice(0, 200)} vs ${whole.slice(0, 200)}`);
    if (index % 64 === 0) {
      for (let at = 0; at <= input.length; at++) {
        const split = feed([Buffer.from(input.subarray(0, at)), Buffer.from(input.subarray(at))], response, limits);
        check(split === whole, `split at ${at} differs: ${split.slice(0, 200)} vs ${whole.slice(0, 200)}`);
      }
      check(feed(Array.from(input, (b) => Buffer.from([b])), response, limits) === whole, 'byte-by-byte feed differs');
    }
  } catch (error) {
    const kind = error instanceof Violation ? 'violation' : 'crash';
    return { kind, detail: error instanceof Error ? (error.stack ?? error.message) : String(error), input };
  }
  const ms = performance.now() - started;
  if (ms > HANG_MS) return { kind: 'hang', detail: `case took ${ms.toFixed(0)} ms`, input };
  return { kind: 'pass', verdict };
}

/** The `distcc` target of `npm run fuzz`: the distcc token codec, in this process. */
export const distccWireTarget: FuzzTarget = {
  name: 'distcc',
  describe: 'distcc token codec (request/response decoders, LZO bodies): damaged protocol 1/2/3 requests and answers',
  async run(options) {
    const seen = { ok: 0, corrupt: 0, incomplete: 0 };
    return runInProcessCases('distcc', options, {
      runCase: (index) => runDistccWireCase(options.seed, index),
      tally: (pass) => {
        seen[pass.verdict]++;
      },
      extra: () => ({ streams_ok: seen.ok, streams_corrupt: seen.corrupt, streams_incomplete: seen.incomplete }),
    });
  },
};
