// Serves one distcc connection (C: dcc_service_job in serve.c): access check, read the request
// as it arrives, wait for a job slot, run the job while watching the client, answer
// DONE STAT SERR SOUT DOTO [DOTD], end the stream, log one summary line in distccd's format:
//
//   client: 127.0.0.1:59404 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:22ms x86_64-linux-gnu-gcc t.c
//
// A request that cannot be read (bad token, DIST 9, ARGC 0, EOF, timeout) is closed without an
// answer, as the C server does, but the log says exactly why. The activation layer decides how
// the bytes arrived; this file never knows.

import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { describePeer, type Connection, type ConnectionHandler } from '../activation/connection';
import { handleFd } from '../activation/handle_fd';
import type { Logger } from '../log/logger';
import type { AccessList } from './access';
import { EXIT } from '../errors';
import { prepareCompileJob, runCompileJob, serrLine, type JobOutcome, type JobSettings, type PreparedCompile } from './job';
import type { JobSlots } from './job_slots';
import { runPumpJob } from './pump_job';
import type { DistccStats, JobResult } from './stats';
import { RequestDecoder, type CompileRequest } from './wire/request';
import { encodeResponse } from './wire/response';
import { DEFAULT_LIMITS, type WireLimits } from './wire/tokens';

/** C: dcc_io_timeout. The client may be slow preprocessing or reading, but not forever. */
export const REQUEST_TIMEOUT_MS = 300_000;

/**
 * Why a job's signal aborts. A reason given up front spares abort() its default: a DOMException
 * with a captured stack trace, built on every job (clients hang up after every answer).
 */
const CLIENT_GONE = Object.freeze(new Error('the client closed the connection'));

/** How long temp-file removal waits, after the answer, for the client to close its end. */
export const HANGUP_WAIT_MS = 1000;

/** Resolves when `signal` aborts (the client hung up) or after `ms`, whichever comes first. */
function hangUp(signal: AbortSignal, ms: number): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export interface CompileService {
  readonly log: Logger;
  /** undefined: every peer is allowed (inetd mode without --allow). */
  readonly access?: AccessList;
  readonly job: JobSettings;
  readonly slots: JobSlots;
  readonly stats?: DistccStats;
  readonly requestTimeoutMs?: number;
  readonly limits?: WireLimits;
  readonly now?: () => number;
}

type ReadResult =
  | { kind: 'ok'; request: CompileRequest }
  | { kind: 'refused'; reason: string }
  | { kind: 'gone'; reason: string };

/**
 * Reads one request; resolves as soon as it is complete or cannot become valid. `onArgv` hears
 * the command line the moment its last ARGV arrives (once, before DOTI or the pump files).
 */
function readRequest(stream: Duplex, limits: WireLimits, timeoutMs: number, onArgv?: (version: number, argv: readonly string[]) => void): Promise<ReadResult> {
  const decoder = new RequestDecoder(limits);
  let heard = false;
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => settle({ kind: 'gone', reason: `no complete request after ${timeoutMs / 1000}s, waiting for ${decoder.waitingFor}` }), timeoutMs);
    const settle = (result: ReadResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onEnd);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      const r = decoder.push(chunk);
      if (!heard && r.kind !== 'corrupt' && decoder.argvComplete) {
        heard = true;
        onArgv?.(decoder.version, decoder.argv);
      }
      if (r.kind === 'ok') settle({ kind: 'ok', request: r.value });
      else if (r.kind === 'corrupt') settle({ kind: 'refused', reason: r.reason });
    };
    const onEnd = (): void => settle({ kind: 'gone', reason: `client closed the connection while we waited for ${decoder.waitingFor}` });
    const onError = (error: Error): void => settle({ kind: 'gone', reason: `read failed while waiting for ${decoder.waitingFor}: ${error.message}` });
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onError);
  });
}

/**
 * Writes the answer, ends the stream and resolves when it is flushed (or the client is gone). A
 * client that stops reading is cut off after `timeoutMs` rather than holding its connection.
 */
function writeAnswer(stream: Duplex, parts: Buffer[], timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => {
      done(false);
      stream.destroy();
    }, timeoutMs);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      stream.off('finish', onFinish);
      stream.off('error', onError);
      stream.off('close', onClose);
      resolve(ok);
    };
    const onFinish = (): void => done(true);
    const onError = (): void => done(false);
    const onClose = (): void => done(stream.writableFinished);
    stream.once('finish', onFinish);
    stream.once('error', onError);
    stream.once('close', onClose);
    stream.cork();
    for (const part of parts) stream.write(part);
    stream.uncork();
    stream.end();
  });
}

/**
 * The descriptor of a socket stream with nothing queued on it: the compiler's exit handler may
 * answer there directly. Pipes (ssh, inetd's pipe mode) and anything else answer through the stream.
 */
function directSocket(stream: Duplex): number | undefined {
  if (!(stream instanceof Socket) || stream.destroyed || stream.writableEnded || stream.writableLength !== 0) return undefined;
  return handleFd(stream);
}

export function summaryLine(peer: string, outcome: Pick<JobOutcome, 'result' | 'status' | 'ret' | 'compiler' | 'input'>, ms: number): string {
  const { status } = outcome;
  const exit = (status >> 8) & 0xff;
  const sig = status & 0x7f;
  const core = (status & 0x80) !== 0 ? 1 : 0;
  const names = outcome.result === 'COMPILE_OK' || outcome.result === 'COMPILE_ERROR' ? ` ${outcome.compiler} ${outcome.input}` : '';
  return `client: ${peer} ${outcome.result} exit:${exit} sig:${sig} core:${core} ret:${outcome.ret} time:${ms}ms${names}`;
}

export function createCompileHandler(service: CompileService): ConnectionHandler {
  return (conn) => serveCompileConnection(conn, service);
}

export async function serveCompileConnection(conn: Connection, service: CompileService): Promise<void | number> {
  const { stream, peer } = conn;
  const now = service.now ?? Date.now;
  const log = service.log;
  const who = describePeer(peer);
  if (peer.kind === 'tcp' && service.access !== undefined && !service.access.allows(peer.address)) {
    log.warning(`connection from client '${who}' denied by access list`);
    stream.destroy();
    return EXIT.ACCESS_DENIED;
  }
  service.stats?.record('TCP_ACCEPT');
  const start = now();
  // The summary line closes the job: it is written once the temp files are gone, and its time
  // runs to the answer (`endMs`), which is what the client waited for.
  const finish = (outcome: Pick<JobOutcome, 'result' | 'status' | 'ret' | 'compiler' | 'input'> & { reason?: string }, endMs = now()): void => {
    const ms = Math.max(0, Math.round(endMs - start));
    if (outcome.reason !== undefined) {
      // A client that gives up is routine (make -k, Ctrl-C); anything else deserves a warning.
      const level = outcome.result === 'CLI_DISCONN' ? 'info' : 'warning';
      log.log(level, `job ${outcome.result === 'REJ_BAD_REQ' ? 'refused' : 'failed'}`, { conn: conn.id, peer: who, reason: outcome.reason });
    }
    log.notice(summaryLine(who, outcome, ms));
    service.stats?.record(outcome.result, { compiler: outcome.compiler, file: outcome.input, startMs: start, stopMs: endMs });
  };

  // Temp files are removed after the answer is out: the client is not kept waiting for unlinks.
  const cleanups: Array<() => Promise<void>> = [];
  const deferCleanup = (cleanup: () => Promise<void>): void => void cleanups.push(cleanup);
  // Protocols 1 and 2: the command line is checked and the temp files made while the client
  // still preprocesses (it sends DOTI last), off the path from the source to the answer.
  let prepared: Promise<PreparedCompile> | undefined;
  const cleanUp = async (): Promise<void> => {
    await prepared; // a preparation in flight registers its files first
    for (const cleanup of cleanups.splice(0)) {
      await cleanup().catch((error: Error) => log.warning('cleanup failed', { conn: conn.id, reason: error.message }));
    }
  };

  const read = await readRequest(stream, service.limits ?? DEFAULT_LIMITS, service.requestTimeoutMs ?? REQUEST_TIMEOUT_MS, (version, argv) => {
    if (version < 3) prepared = prepareCompileJob(argv, service.job, deferCleanup);
  });
  if (read.kind !== 'ok') {
    stream.destroy();
    await cleanUp();
    const result: JobResult = read.kind === 'refused' ? 'REJ_BAD_REQ' : 'CLI_DISCONN';
    finish({ result, status: 0, ret: read.kind === 'refused' ? EXIT.PROTOCOL_ERROR : EXIT.IO_ERROR, compiler: '', input: '', reason: read.reason });
    return;
  }
  const request = read.request;
  log.debug('request', { conn: conn.id, peer: who, protocol: request.protocol, argv: request.argv.join(' ') });

  // From here on the client only waits: EOF or an error means it gave up (CLI_DISCONN).
  const gone = new AbortController();
  const onGone = (): void => gone.abort(CLIENT_GONE);
  stream.on('end', onGone);
  stream.on('error', onGone);
  stream.on('close', onGone);
  stream.on('data', () => undefined); // keep reading so EOF is seen; stray bytes are dropped
  const jobOptions = { signal: gone.signal, deferCleanup, prepared, answerSocket: directSocket(stream) };
  try {
    let release: () => void;
    try {
      release = await service.slots.acquire(gone.signal);
    } catch {
      finish({ result: 'CLI_DISCONN', status: 0, ret: EXIT.IO_ERROR, compiler: request.argv[0] ?? '', input: '', reason: 'client disconnected while waiting for a job slot' });
      return;
    }
    let outcome: JobOutcome;
    try {
      outcome = request.protocol === 3
        ? await runPumpJob(request, service.job, jobOptions)
        : await runCompileJob(request, service.job, jobOptions);
    } catch (error) {
      // The server failed (TMPDIR full, a file vanished): say so, the client can still retry locally.
      const reason = (error as Error).message;
      const status = EXIT.DISTCC_FAILED << 8;
      outcome = {
        result: 'OTHER', status, ret: EXIT.DISTCC_FAILED, compiler: request.argv[0] ?? '', input: '', reason,
        response: { version: request.version, status, stderr: serrLine(service.job.pid, reason), stdout: Buffer.alloc(0), object: Buffer.alloc(0) },
      };
    } finally {
      release();
    }
    if (outcome.answered !== undefined) {
      // Sent when the compiler exited. The client may have read it and hung up already: that is
      // success, unless part of the answer was still to be written.
      const { rest } = outcome.answered;
      if (rest !== undefined) {
        const sent = !gone.signal.aborted && (await writeAnswer(stream, [rest], service.requestTimeoutMs ?? REQUEST_TIMEOUT_MS));
        if (!sent) outcome = { ...outcome, result: 'CLI_DISCONN', ret: EXIT.IO_ERROR, reason: 'client disconnected before the answer was sent' };
      } else if (!stream.destroyed && !stream.writableEnded) {
        stream.end();
      }
    } else if (outcome.response !== undefined && !gone.signal.aborted) {
      const sent = await writeAnswer(stream, encodeResponse(outcome.response), service.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
      if (!sent) outcome = { ...outcome, result: 'CLI_DISCONN', ret: EXIT.IO_ERROR, reason: outcome.reason ?? 'client disconnected before the answer was sent' };
    } else if (gone.signal.aborted && outcome.result !== 'CLI_DISCONN') {
      outcome = { ...outcome, result: 'CLI_DISCONN', ret: EXIT.IO_ERROR, reason: 'client disconnected while compiling' };
    } else if (outcome.response === undefined) {
      stream.destroy();
    }
    const answeredAt = now();
    // The client saves the object and exits now; the unlinks wait until it has hung up (as it does
    // at once), so they do not compete with it for the CPU or the filesystem journal.
    await hangUp(gone.signal, HANGUP_WAIT_MS);
    await cleanUp();
    finish(outcome, answeredAt);
  } finally {
    await cleanUp();
    stream.off('end', onGone);
    stream.off('error', onGone);
    stream.off('close', onGone);
  }
}
