// Serves one distcc connection (C: dcc_service_job in serve.c): access check, read the request
// as it arrives, hand it to its CompileJob (compile_job.ts: slot, files, compiler, summary line)
// while watching the client, answer DONE STAT SERR SOUT DOTO [DOTD] and end the stream. This
// file speaks the wire only; the job logs the summary line in distccd's format:
//
//   distccd[1234] (dcc_job_summary) client: 127.0.0.1:59404 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:22ms x86_64-linux-gnu-gcc t.c
//
// A request that cannot be read (bad token, DIST 9, ARGC 0, EOF, timeout) is closed without an
// answer, as the C server does, but the log says exactly why. The activation layer decides how
// the bytes arrived; this file never knows.

import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { describePeer, type Connection, type ConnectionHandler } from '../activation/connection';
import { handleFd } from '../activation/handle_fd';
import type { AccessList } from './access';
import { EXIT } from '../errors';
import { CompileJob, type JobService } from './compile_job';
import type { JobOutcome } from './job';
import { RequestDecoder, type CompileRequest } from './wire/request';
import { encodeResponse } from './wire/response';
import { DEFAULT_LIMITS, type WireLimits } from './wire/tokens';

/** C: dcc_io_timeout. The client may be slow preprocessing or reading, but not forever. */
export const REQUEST_TIMEOUT_MS = 300_000;

export interface CompileService extends JobService {
  /** undefined: every peer is allowed (inetd mode without --allow). */
  readonly access?: AccessList;
  readonly requestTimeoutMs?: number;
  readonly limits?: WireLimits;
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

export function createCompileHandler(service: CompileService): ConnectionHandler {
  return (conn) => serveCompileConnection(conn, service);
}

export async function serveCompileConnection(conn: Connection, service: CompileService): Promise<void | number> {
  const { stream, peer } = conn;
  const who = describePeer(peer);
  if (peer.kind === 'tcp' && service.access !== undefined && !service.access.allows(peer.address)) {
    service.log.warning(`connection from client '${who}' denied by access list`);
    service.observer?.denied(who);
    stream.destroy();
    return EXIT.ACCESS_DENIED;
  }
  service.stats?.record('TCP_ACCEPT');
  const job = new CompileJob(service, { conn: conn.id, peer: who });
  const timeoutMs = service.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  let protocol = 0;
  let sentDirectly = 0;
  try {
    const read = await readRequest(stream, service.limits ?? DEFAULT_LIMITS, timeoutMs, (version, argv) => job.heardArgv(version, argv));
    if (read.kind !== 'ok') {
      stream.destroy();
      const refused = read.kind === 'refused';
      await job.end({ result: refused ? 'REJ_BAD_REQ' : 'CLI_DISCONN', status: 0, ret: refused ? EXIT.PROTOCOL_ERROR : EXIT.IO_ERROR, compiler: '', input: '', reason: read.reason });
      return;
    }
    const request = read.request;
    protocol = request.protocol;
    service.log.debug('request', { conn: conn.id, peer: who, protocol: request.protocol, argv: request.argv.join(' ') });
    const unwatch = watchForHangUp(stream, job);
    try {
      const outcome = await deliver(stream, await job.run(request, { answerSocket: directSocket(stream) }), job, timeoutMs);
      sentDirectly = outcome.answered?.sent ?? 0;
      await job.end(outcome, { answered: true });
    } finally {
      unwatch();
    }
  } finally {
    await job.end();
    if (service.observer !== undefined && stream instanceof Socket) service.observer.transferred(protocol, stream.bytesRead, stream.bytesWritten + sentDirectly);
  }
}

/**
 * From the request on, the client only waits: EOF or an error means it gave up (CLI_DISCONN).
 * Returns the function that stops watching.
 */
function watchForHangUp(stream: Duplex, job: CompileJob): () => void {
  const onGone = (): void => job.clientGone();
  const drop = (): void => undefined; // keep reading so EOF is seen; stray bytes are dropped
  stream.on('end', onGone);
  stream.on('error', onGone);
  stream.on('close', onGone);
  stream.on('data', drop);
  return () => {
    stream.off('end', onGone);
    stream.off('error', onGone);
    stream.off('close', onGone);
  };
}

/**
 * Sends what is left of the job's answer, or closes without one, and returns the outcome as the
 * client saw it: a client that left before its answer was out ends as CLI_DISCONN.
 */
async function deliver(stream: Duplex, outcome: JobOutcome, job: Pick<CompileJob, 'isGone'>, timeoutMs: number): Promise<JobOutcome> {
  if (outcome.answered !== undefined) {
    // Sent when the compiler exited. The client may have read it and hung up already: that is
    // success, unless part of the answer was still to be written.
    const { rest } = outcome.answered;
    if (rest !== undefined) {
      const sent = !job.isGone && (await writeAnswer(stream, [rest], timeoutMs));
      if (!sent) return { ...outcome, result: 'CLI_DISCONN', ret: EXIT.IO_ERROR, reason: 'client disconnected before the answer was sent' };
    } else if (!stream.destroyed && !stream.writableEnded) {
      stream.end();
    }
    return outcome;
  }
  if (outcome.response !== undefined && !job.isGone) {
    const sent = await writeAnswer(stream, encodeResponse(outcome.response), timeoutMs);
    return sent ? outcome : { ...outcome, result: 'CLI_DISCONN', ret: EXIT.IO_ERROR, reason: outcome.reason ?? 'client disconnected before the answer was sent' };
  }
  if (job.isGone && outcome.result !== 'CLI_DISCONN') {
    return { ...outcome, result: 'CLI_DISCONN', ret: EXIT.IO_ERROR, reason: 'client disconnected while compiling' };
  }
  if (outcome.response === undefined) stream.destroy();
  return outcome;
}
