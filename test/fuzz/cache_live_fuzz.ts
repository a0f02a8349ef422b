// The live distcache fuzzer: damaged request streams (cache_mutators) on many concurrent TCP
// connections to a running server, while a well-behaved client keeps adding, reading and
// removing its own sessions. For every connection the codec itself predicts what must happen
// (the messages before the first bad byte or short ADD are answered in order, then the
// connection is dropped with a logged reason; a well-formed stream is answered in full and closed
// after our half-close), and the run checks:
// - every fuzzed connection gets exactly the predicted responses (uid, operation, a payload
//   valid for the operation), then a close within CONNECTION_BOUND_MS;
// - every predicted drop has its "drop ... peer=127.0.0.1:PORT ... reason=..." log line, and no
//   well-formed stream is dropped;
// - the good client never gets a wrong answer or an error;
// - the server stays up and its resident memory is sampled (peak reported).
// Some connections are abandoned (destroyed mid-request) instead: the server must just go on.

import net from 'node:net';
import crypto from 'node:crypto';
import { CacheClient } from '../../src/cache/client';
import { decodeAddPayload, MessageReader, MAX_PAYLOAD, Operation, Status, type Operation as Op } from '../../src/cache/wire/index';
import { fuzzStream, randomChunks } from './cache_mutators';
import { MAX_FINDINGS, type Finding, type FuzzOptions, type FuzzSummary } from './fuzz_target';
import { Rng } from './rng';
import { waitUntil } from '../support/wait_until';

export const CONNECTION_BOUND_MS = 10_000;

export interface FuzzedServer {
  readonly target: { readonly host: string; readonly port: number };
  /** Every log line so far (grows while the server runs). */
  readonly lines: readonly string[];
  rssBytes(): number;
  /** False once the server process died. */
  alive(): boolean;
  /** A proxy (dc_client) closes a bad application at once, dropping the answers still owed to it:
   * any prefix of the predicted responses is right, and its log lines name no peer port. */
  readonly proxy?: boolean;
  /** The server's resident memory must stay below this (bytes), when it is measured alone. */
  readonly rssLimitBytes?: number;
  /** A target-specific health problem at the end of the run (e.g. the proxy lost its upstream). */
  problem?(): string | undefined;
}

interface Expectation {
  readonly responses: ReadonlyArray<{ uid: number; operation: Op }>;
  readonly drop: boolean;
}

/** What the server must do with `stream`, by the codec's own reading of it. */
export function expectFor(stream: Buffer): Expectation {
  const reader = new MessageReader('request');
  reader.push(stream);
  const responses: Array<{ uid: number; operation: Op }> = [];
  for (;;) {
    const r = reader.next();
    if (r.kind === 'incomplete') return { responses, drop: false };
    if (r.kind === 'corrupt') return { responses, drop: true };
    const m = r.value;
    if (m.operation === Operation.ADD && decodeAddPayload(m.payload).kind === 'short') return { responses, drop: true };
    responses.push({ uid: m.uid, operation: m.operation });
  }
}

const ADD_STATUSES = new Set<number>([Status.OK, Status.ADD_CORRUPT, Status.ADD_MATCHING_SESSION, Status.ADD_TIMEOUT_RANGE, Status.ADD_ID_RANGE, Status.ADD_DATA_RANGE]);

function checkResponses(got: Buffer, want: Expectation, anyPrefix: boolean): string | undefined {
  const reader = new MessageReader('response');
  reader.push(got);
  for (let i = 0; ; i++) {
    const r = reader.next();
    if (r.kind === 'corrupt') return `response stream corrupt at ${r.offset}: ${r.reason}`;
    if (r.kind === 'incomplete') {
      if (reader.buffered > 0) return `${reader.buffered} stray bytes after ${i} responses`;
      if (i !== want.responses.length && !(anyPrefix && want.drop && i < want.responses.length)) return `${i} responses, want ${want.responses.length}`;
      return undefined;
    }
    const m = r.value;
    const w = want.responses[i];
    if (w === undefined) return `unexpected response ${i + 1} uid=${m.uid}`;
    if (m.uid !== w.uid || m.operation !== w.operation) return `response ${i + 1} is uid=${m.uid} op=${m.operation}, want uid=${w.uid} op=${w.operation}`;
    const p = m.payload;
    if (m.operation === Operation.ADD && !(p.length === 1 && ADD_STATUSES.has(p[0]!))) return `ADD answered ${p.toString('hex')}`;
    if ((m.operation === Operation.REMOVE || m.operation === Operation.HAVE) && !(p.length === 1 && p[0]! <= 1)) return `op ${m.operation} answered ${p.toString('hex')}`;
    if (m.operation === Operation.GET && (p.length === 0 || p.length > MAX_PAYLOAD)) return `GET answered ${p.length} bytes`;
  }
}

/** Counts drop log lines per peer port, reading new lines as they come. */
class DropLedger {
  readonly #lines: readonly string[];
  #read = 0;
  readonly #byPort = new Map<number, number>();
  reasonless = 0;

  constructor(lines: readonly string[]) {
    this.#lines = lines;
  }

  #scan(): void {
    for (; this.#read < this.#lines.length; this.#read++) {
      const line = this.#lines[this.#read]!;
      if (!/\bdrop\b/.test(line)) continue;
      const m = /peer=127\.0\.0\.1:(\d+)/.exec(line);
      if (m === null) continue;
      if (!/reason=("[^"]+"|\S+)/.test(line)) this.reasonless++;
      const port = Number(m[1]);
      this.#byPort.set(port, (this.#byPort.get(port) ?? 0) + 1);
    }
  }

  /** Takes one drop line of `port`, waiting up to `ms` for it. */
  async take(port: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      this.#scan();
      const n = this.#byPort.get(port) ?? 0;
      if (n > 0) {
        this.#byPort.set(port, n - 1);
        return true;
      }
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** A new connection on `port`: lines of earlier ones with the same port (abandoned ones may or
   * may not have been dropped) no longer count. */
  reset(port: number): void {
    this.#scan();
    this.#byPort.delete(port);
  }

  has(port: number): boolean {
    this.#scan();
    return (this.#byPort.get(port) ?? 0) > 0;
  }
}

async function runConnection(server: FuzzedServer, rng: Rng, ledger: DropLedger): Promise<{ abandoned: boolean; error?: string; input: Buffer }> {
  const stream = fuzzStream(rng, 'request', 6);
  const want = expectFor(stream);
  const abandon = rng.chance(0.1);
  const socket = net.connect({ host: server.target.host, port: server.target.port, allowHalfOpen: true });
  const received: Buffer[] = [];
  let failed: string | undefined;
  const closed = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      // A reset after a drop (we kept writing into a closed connection) is expected.
      if (!want.drop && !abandon) failed ??= `socket error ${e.code ?? e.message}`;
    });
    socket.on('close', () => resolve());
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  }).catch((e: NodeJS.ErrnoException) => {
    failed = `connect failed: ${e.code ?? e.message}`;
  });
  if (failed !== undefined) return { abandoned: false, error: failed, input: stream };
  const port = socket.localPort!;
  ledger.reset(port);
  const chunks = randomChunks(rng, stream, 8);
  for (const [i, chunk] of chunks.entries()) {
    if (socket.destroyed) break;
    if (abandon && i === chunks.length - 1) break;
    socket.write(chunk);
    if (rng.chance(0.3)) await new Promise((resolve) => setImmediate(resolve));
  }
  if (abandon) {
    socket.destroy();
    await closed;
    return { abandoned: true, input: stream };
  }
  if (!socket.destroyed) socket.end();
  const timer = setTimeout(() => {
    failed ??= `connection not closed by the server within ${CONNECTION_BOUND_MS} ms`;
    socket.destroy();
  }, CONNECTION_BOUND_MS);
  await closed;
  clearTimeout(timer);
  if (failed !== undefined) return { abandoned: false, error: failed, input: stream };
  const problem = checkResponses(Buffer.concat(received), want, server.proxy === true);
  if (problem !== undefined) return { abandoned: false, error: `${problem} (port ${port})`, input: stream };
  if (server.proxy === true) {
    // Counted at the end: the proxy's lines carry no peer.
  } else if (want.drop) {
    if (!(await ledger.take(port, 3000))) return { abandoned: false, error: `dropped connection from port ${port} has no drop log line`, input: stream };
  } else if (ledger.has(port)) {
    return { abandoned: false, error: `well-formed stream from port ${port} was dropped`, input: stream };
  }
  return { abandoned: false, input: stream };
}

/** A well-behaved client: its sessions (unguessable ids, the longest timeout) must read back exactly. */
async function runGoodClient(server: FuzzedServer, stop: () => boolean): Promise<{ ops: number; wrong: string[] }> {
  const wrong: string[] = [];
  let ops = 0;
  let client: CacheClient | undefined;
  try {
    client = await CacheClient.connect(server.target);
    while (!stop() && wrong.length < 5) {
      const id = crypto.randomBytes(32);
      const data = crypto.randomBytes(1 + crypto.randomInt(3000));
      const added = await client.add(id, data, 604_800_000);
      if (added !== Status.OK) wrong.push(`ADD answered ${added}`);
      const got = await client.get(id);
      if (got === null || !got.equals(data)) wrong.push(`GET answered ${got === null ? 'miss' : `${got.length} wrong bytes`}`);
      if (!(await client.have(id))) wrong.push('HAVE answered absent');
      if (!(await client.remove(id))) wrong.push('REMOVE answered not found');
      if ((await client.get(id)) !== null) wrong.push('GET after REMOVE hit');
      ops += 5;
    }
  } catch (error) {
    wrong.push(`good client failed: ${(error as Error).message}`);
  } finally {
    client?.destroy();
  }
  return { ops, wrong };
}

export async function fuzzLiveServer(name: string, server: FuzzedServer, options: FuzzOptions & { concurrency: number }): Promise<FuzzSummary> {
  const started = Date.now();
  const ledger = new DropLedger(server.lines);
  const findings: Finding[] = [];
  let crashes = 0;
  let hangs = 0;
  let violations = 0;
  let abandoned = 0;
  let drops = 0;
  let peak = server.rssBytes();
  const sampler = setInterval(() => (peak = Math.max(peak, server.rssBytes())), 100);
  let next = 0;
  let done = 0;
  let timeUp = false;
  const note = (kind: Finding['kind'], index: number, detail: string, input: Buffer): void => {
    if (kind === 'crash') crashes++;
    else if (kind === 'hang') hangs++;
    else violations++;
    if (findings.length < MAX_FINDINGS) findings.push({ kind, index, detail, input: input.subarray(0, 4096).toString('hex') });
  };
  const good = runGoodClient(server, () => next >= options.cases || timeUp || !server.alive());
  const worker = async (): Promise<void> => {
    while (next < options.cases && !timeUp && server.alive()) {
      const index = options.from + next++;
      const rng = new Rng(options.seed, index);
      const r = await runConnection(server, rng, ledger);
      done++;
      if (r.abandoned) abandoned++;
      else if (expectFor(r.input).drop) drops++;
      if (r.error !== undefined) note(/within/.test(r.error) ? 'hang' : 'violation', index, r.error, r.input);
      if (Date.now() - started > options.timeLimitMs) timeUp = true;
      if (done % 10000 === 0) options.progress?.(`${name}: ${done} connections, ${crashes + hangs + violations} findings`);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const goodResult = await good;
  clearInterval(sampler);
  peak = Math.max(peak, server.rssBytes());
  if (!server.alive()) note('crash', options.from + done, 'the server process died', Buffer.alloc(0));
  for (const w of goodResult.wrong) note('violation', -1, `good client: ${w}`, Buffer.alloc(0));
  if (ledger.reasonless > 0) note('violation', -1, `${ledger.reasonless} drop lines without a reason`, Buffer.alloc(0));
  if (server.proxy === true) {
    // Every predicted drop has a "bad request" line with a reason; abandoned connections may add some.
    const badLines = (): number => server.lines.filter((l) => /\bbad request\b.*\bwhy=/.test(l)).length;
    await waitUntil(() => (badLines() >= drops ? true : undefined), 5000, () => '').catch(() => undefined);
    const bad = badLines();
    if (bad < drops || bad > drops + abandoned) note('violation', -1, `${bad} "bad request" log lines for ${drops} predicted drops (+${abandoned} abandoned)`, Buffer.alloc(0));
  }
  if (server.rssLimitBytes !== undefined && peak > server.rssLimitBytes) {
    note('violation', -1, `server resident memory peaked at ${(peak / 1048576).toFixed(0)} MB, above ${(server.rssLimitBytes / 1048576).toFixed(0)} MB`, Buffer.alloc(0));
  }
  const problem = server.problem?.();
  if (problem !== undefined) note('violation', -1, problem, Buffer.alloc(0));
  return {
    target: name,
    cases: done,
    crashes,
    hangs,
    violations,
    peakRssBytes: peak,
    seconds: (Date.now() - started) / 1000,
    findings,
    extra: { dropped_as_predicted: drops, abandoned, good_client_ops: goodResult.ops },
  };
}
