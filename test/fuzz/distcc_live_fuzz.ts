// The live distccd fuzzer (`npm run fuzz -- --target distcc-live`): the real daemon
// (node dist/src/cli/distccd.js, --jobs 4, a private masquerade directory and a private TMPDIR) on
// a loopback port gets one damaged request per connection (distcc_mutators), WORKERS connections
// at a time, while a well-behaved client keeps compiling the captured protocol 1 request with the
// real gcc and checks every object it gets back. Each case's expectation comes from the codec
// (RequestDecoder, whole; incomplete and corrupt requests are followed by EOF): corrupt -> closed without an answer, a REJ_BAD_REQ summary and a
// "job refused" line carrying that exact reason; incomplete -> closed without an answer and a
// CLI_DISCONN summary with its reason; ok -> an answer (whatever STAT: the job ran or was refused
// with the reason in SERR). Every connection must end within CONNECTION_BOUND_MS. At the end the
// daemon must still be alive, its TMPDIR empty, and its peak RSS (VmHWM) is reported.

import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { formatLine } from '../../src/log/logger';
import { RequestDecoder } from '../../src/compile/wire/request';
import { ResponseDecoder, type CompileResponse } from '../../src/compile/wire/response';
import { REQUEST_P1 } from '../support/distcc_golden';
import { makeMasqueradeDir, startDistccd, type RunningDistccd } from '../support/distccd_harness';
import { fuzzDistccStream } from './distcc_mutators';
import { MAX_FINDINGS, type Finding, type FuzzSummary, type FuzzTarget } from './fuzz_target';
import { Rng } from './rng';
import { procMemory } from './server_program';

export const WORKERS = 8;
/** A damaged request is read, refused or compiled and answered well within this. */
export const CONNECTION_BOUND_MS = 15_000;

type Expect = { readonly kind: 'answer' } | { readonly kind: 'drop'; readonly result: 'REJ_BAD_REQ' | 'CLI_DISCONN'; readonly reason?: string };

/** What the daemon must do with `bytes` followed by EOF, by the codec's own verdict. */
export function expectForRequest(bytes: Buffer): Expect {
  const r = new RequestDecoder().push(bytes);
  if (r.kind === 'ok') return { kind: 'answer' };
  if (r.kind === 'corrupt') return { kind: 'drop', result: 'REJ_BAD_REQ', reason: r.reason };
  return { kind: 'drop', result: 'CLI_DISCONN' };
}

/** Sends `bytes`, half-closes, and reads until the server closes; the local port and what came back. */
function exchange(port: number, bytes: Buffer, halfClose: boolean): Promise<{ localPort: number; answered: boolean; response?: CompileResponse; reply: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const decoder = new ResponseDecoder();
    let answered = false;
    let response: CompileResponse | undefined;
    let reply = 0;
    let localPort = 0;
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      localPort = socket.localPort ?? 0;
      // EOF after a complete request means the client gave up (as distccd 3.4 reads it): a
      // complete request is sent like the real client sends it, with the socket left open.
      if (halfClose) socket.end(bytes);
      else socket.write(bytes);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open after ${CONNECTION_BOUND_MS} ms`));
    }, CONNECTION_BOUND_MS);
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.length;
      if (answered) return;
      const r = decoder.push(chunk);
      if (r.kind === 'ok') {
        answered = true;
        response = r.value;
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ localPort, answered, response, reply, ms: Date.now() - started });
    });
  });
}

/** Log lines by the client port they name (`peer=127.0.0.1:P`, `client: 127.0.0.1:P`). */
class LinesByPort {
  #seen = 0;
  readonly #byPort = new Map<number, string[]>();
  constructor(readonly lines: string[]) {}
  take(port: number): string[] {
    for (; this.#seen < this.lines.length; this.#seen++) {
      const line = this.lines[this.#seen]!;
      const m = /(?:peer=|client: )127\.0\.0\.1:(\d+)/.exec(line);
      if (m === null) continue;
      const p = Number(m[1]);
      const list = this.#byPort.get(p) ?? [];
      list.push(line);
      this.#byPort.set(p, list);
    }
    const list = this.#byPort.get(port) ?? [];
    const end = list.findIndex((l) => l.includes('client: 127.0.0.1:'));
    if (end < 0) return [];
    const mine = list.splice(0, end + 1);
    return mine;
  }
}

export async function runLiveDistcc(options: { cases: number; seed: number; from: number; timeLimitMs: number; progress?: (l: string) => void }): Promise<FuzzSummary> {
  const started = Date.now();
  const cleanups: Array<() => Promise<unknown>> = [];
  const t = { after: (fn: () => Promise<unknown>) => void cleanups.push(fn) };
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'distcc-live-fuzz-'));
  const tmp = path.join(root, 'tmp');
  await fs.mkdir(tmp);
  const findings: Finding[] = [];
  let crashes = 0;
  let hangs = 0;
  let violations = 0;
  let n = 0;
  const counts = { answered: 0, dropped_as_predicted: 0, good_client_compiles: 0, slowest_connection_ms: 0 };
  let daemon: RunningDistccd | undefined;
  let peak = 0;
  try {
    const masq = await makeMasqueradeDir(path.join(root, 'masq'));
    daemon = await startDistccd(t, { compilerDir: masq, args: ['--jobs', '4', '--log-level', 'info'], env: { TMPDIR: tmp } });
    const d = daemon;
    const byPort = new LinesByPort(d.lines);
    const note = (kind: Finding['kind'], index: number, detail: string, input: Buffer): void => {
      if (kind === 'crash') crashes++;
      else if (kind === 'hang') hangs++;
      else violations++;
      if (findings.length < MAX_FINDINGS) findings.push({ kind, index, detail, input: input.subarray(0, 4096).toString('hex') });
    };
    let stop = false;
    /** Waits for (and consumes) the log lines of the connection from `port`, so a later connection from the same port gets its own. */
    const linesOf = async (port: number): Promise<string[]> => {
      let mine: string[] = [];
      for (const end = Date.now() + 5000; mine.length === 0 && Date.now() < end; ) {
        mine = byPort.take(port);
        if (mine.length === 0) await new Promise((r) => setTimeout(r, 5));
      }
      return mine;
    };
    const goodClient = (async () => {
      while (!stop) {
        let a;
        try {
          a = await exchange(d.port, REQUEST_P1, false);
        } catch (error) {
          note('hang', -1, `the good client: ${(error as Error).message}`, REQUEST_P1);
          continue;
        }
        await linesOf(a.localPort);
        const r = a.response;
        if (r === undefined || r.status !== 0 || r.object.subarray(0, 4).toString('latin1') !== '\x7fELF') {
          note('violation', -1, `the good client's compile failed: ${r === undefined ? `no answer (${a.reply} bytes)` : `STAT ${r.status} ${r.stderr.toString()}`}`, REQUEST_P1);
        } else counts.good_client_compiles++;
      }
    })();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < options.cases && Date.now() - started < options.timeLimitMs && d.child.exitCode === null) {
        const index = options.from + next++;
        const input = fuzzDistccStream(new Rng(options.seed, index));
        const expect = expectForRequest(input);
        let got;
        try {
          got = await exchange(d.port, input, expect.kind !== 'answer');
        } catch (error) {
          note('hang', index, (error as Error).message, input);
          continue;
        }
        n++;
        counts.slowest_connection_ms = Math.max(counts.slowest_connection_ms, got.ms);
        const mine = await linesOf(got.localPort);
        const summary = mine.at(-1) ?? '';
        if (expect.kind === 'answer') {
          if (!got.answered) note('violation', index, `a complete request got no answer (${got.reply} bytes); log: ${mine.join(' | ')}`, input);
          else counts.answered++;
          continue;
        }
        const reasonField = expect.reason === undefined ? 'reason=' : formatLine('', { reason: expect.reason }).trim();
        if (got.reply !== 0) note('violation', index, `a ${expect.result} request got ${got.reply} reply bytes`, input);
        else if (!summary.includes(` ${expect.result} `)) note('violation', index, `expected a ${expect.result} summary, log: ${mine.join(' | ') || '(none within 5 s)'}`, input);
        else if (!mine.some((l) => /job (refused|failed)/.test(l) && l.includes(reasonField))) note('violation', index, `no log line with ${reasonField}: ${mine.join(' | ')}`, input);
        else counts.dropped_as_predicted++;
        if ((n & 255) === 0) {
          peak = Math.max(peak, procMemory(d.child.pid!, 'VmHWM'));
          if ((n & 4095) === 0) options.progress?.(`distcc-live: ${n} connections, ${crashes + hangs + violations} findings, ${((Date.now() - started) / 1000).toFixed(0)} s`);
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, () => worker()));
    stop = true;
    await goodClient;
    peak = Math.max(peak, procMemory(d.child.pid!, 'VmHWM'));
    if (d.child.exitCode !== null) note('crash', -1, `distccd exited ${d.child.exitCode}: ${d.lines.slice(-20).join('\n')}`, Buffer.alloc(0));
    const left = await fs.readdir(tmp);
    if (left.length > 0) note('violation', -1, `temp files left in TMPDIR: ${left.slice(0, 10).join(' ')}`, Buffer.alloc(0));
  } finally {
    for (const fn of cleanups.reverse()) await fn();
    await fs.rm(root, { recursive: true, force: true });
  }
  return { target: 'distcc-live', cases: n, crashes, hangs, violations, peakRssBytes: peak, seconds: (Date.now() - started) / 1000, findings, extra: { ...counts } };
}

export const distccLiveTarget: FuzzTarget = {
  name: 'distcc-live',
  describe: 'the real distccd on loopback: damaged requests on 8 connections while a good client compiles',
  run: runLiveDistcc,
};
