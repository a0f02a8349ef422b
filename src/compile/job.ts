// One protocol 1/2 compile job, from a decoded request to the answer (C: dcc_run_job in
// serve.c): scan argv, check the compiler (CVE-2004-2687), write DOTI to a private temp file,
// run the compiler on it, read back the object, remove every temp file. Refusals found after the
// request was read are answered, not dropped: a failing STAT with the reason in SERR is the only
// way the user ever learns why (distcc issues #343, #243). Protocol 3 lives in pump_job.ts.

import { closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT } from '../errors';
import { checkCompiler, type CompilerPolicy } from './allowlist';
import { rewriteArgs, scanArgs, serverPathOption, tempExtensionFor, type ScannedArgs } from './args';
import { openCaptures, runCompiler, type CaptureFiles, type CompilerOutcome } from './compiler_process';
import type { JobResult } from './stats';
import type { Sandbox } from './sandbox/sandbox';
import { TempFiles, writeAll } from './temp_files';
import { decompressLzo } from './wire/lzo';
import type { JobKeyInput } from './object_cache/object_cache';
import type { CompileRequest } from './wire/request';
import type { CompileResponse } from './wire/response';

export interface JobSettings {
  readonly tmpDir: string;
  /** Priority increment for the compiler (--nice). */
  readonly nice: number;
  /** --job-lifetime in ms; 0 = no limit. */
  readonly lifetimeMs: number;
  /** DISTCC_SAVE_TEMPS=1: keep the temp files. */
  readonly saveTemps: boolean;
  /**
   * Remove temp files with synchronous calls, the directory listed by each job itself: for a
   * process that serves one connection (--inetd, Accept=yes), which has nothing else to serve
   * and whose client (ssh mode) waits for it to exit.
   */
  readonly inlineCleanup?: boolean;
  /** The compiler's whole environment (see compilerEnvironment). */
  readonly env: NodeJS.ProcessEnv;
  readonly policy: CompilerPolicy;
  /** The daemon's pid, for `distccd[PID] ERROR: ...` lines in SERR. */
  readonly pid: number;
  /** Run every compiler in this sandbox (--sandbox); unset: as the daemon's user, unconfined. */
  readonly sandbox?: Sandbox;
}

export interface JobOutcome {
  readonly result: JobResult;
  /** undefined: close without an answer (the client is gone), unless `answered`. */
  readonly response?: CompileResponse;
  /** The answer already went out from the compiler's exit handler; `rest` is still to write. */
  readonly answered?: { readonly rest?: Buffer; /** Bytes the exit handler wrote itself. */ readonly sent?: number };
  readonly status: number;
  /** distcc's own code for the summary line's ret: (0, or 101, 107, 110, 118 ...). */
  readonly ret: number;
  readonly compiler: string;
  readonly input: string;
  /** Why the job was refused or failed, for the log. */
  readonly reason?: string;
}

/** The line a job adds to SERR for the user, in distccd's own format. */
export function serrLine(pid: number, text: string): Buffer {
  return Buffer.from(`distccd[${pid}] ERROR: ${text}\n`);
}

/** Variables meant for the daemon alone (systemd activation, our detach handshake). */
const DAEMON_ONLY_ENV = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'DISTKIT_DETACHED_REPORT_FD'];

/**
 * The environment compilers run with: PATH from DISTCCD_PATH when set, otherwise the daemon's PATH
 * without the masquerade directories (running a masquerade link would call distcc itself), and
 * _DISTCC_SAFEGUARD incremented so a distcc reached anyway stops the recursion.
 */
export function compilerEnvironment(env: NodeJS.ProcessEnv, masqueradeDirs: readonly string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  // What the service manager handed the daemon is not the compiler's: a compiler holding
  // NOTIFY_SOCKET could tell systemd we are ready or stopping.
  for (const name of DAEMON_ONLY_ENV) delete out[name];
  const skip = new Set(masqueradeDirs.map((d) => path.resolve(d)));
  out['PATH'] =
    env['DISTCCD_PATH'] !== undefined && env['DISTCCD_PATH'] !== ''
      ? env['DISTCCD_PATH']
      : (env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter((d) => d !== '' && !skip.has(path.resolve(d))).join(':');
  const level = Number.parseInt(env['_DISTCC_SAFEGUARD'] ?? '0', 10);
  out['_DISTCC_SAFEGUARD'] = String((Number.isFinite(level) ? level : 0) + 1);
  return Object.freeze(out); // frozen: runCompiler flattens it once and reuses the list
}

/** A request and the settings it runs under: what every step of a job needs. */
export interface JobContext {
  readonly request: CompileRequest;
  readonly settings: JobSettings;
}

/** A job refused after its request was read: answered with STAT ret<<8 and the reason in SERR. */
export function refusal({ request, settings }: JobContext, reason: string, options: { ret?: number } = {}): JobOutcome {
  const ret = options.ret ?? EXIT.BAD_ARGUMENTS;
  const status = ret << 8;
  return {
    result: 'REJ_BAD_REQ',
    response: { version: request.version, status, stderr: serrLine(settings.pid, reason), stdout: Buffer.alloc(0), object: Buffer.alloc(0) },
    status,
    ret,
    compiler: request.argv[0] ?? '',
    input: '',
    reason,
  };
}

/** Turns what the compiler did into the answer and the summary fields (shared with pump jobs). */
export function outcomeOf(
  { request, settings }: JobContext,
  ran: {
    readonly run: CompilerOutcome;
    readonly compiler: string;
    readonly input: string;
    readonly readObject: () => Promise<{ object: Buffer; depfile?: Buffer }>;
  },
): Promise<JobOutcome> {
  const { run, readObject } = ran;
  const base = { compiler: ran.compiler, input: ran.input };
  const answer = (status: number, stderr: Buffer, stdout: Buffer, object: Buffer = Buffer.alloc(0), depfile?: Buffer): CompileResponse =>
    ({ version: request.version, status, stderr, stdout, object, depfile });
  switch (run.kind) {
    case 'answered':
      return Promise.resolve({ ...base, result: run.status === 0 ? 'COMPILE_OK' : 'COMPILE_ERROR', status: run.status, ret: 0, answered: { rest: run.rest, sent: run.sent } });
    case 'unanswered':
      return Promise.resolve({ ...base, result: 'CLI_DISCONN', status: run.status, ret: EXIT.IO_ERROR, reason: run.reason });
    case 'aborted':
      return Promise.resolve({ ...base, result: 'CLI_DISCONN', status: EXIT.IO_ERROR << 8, ret: EXIT.IO_ERROR, reason: 'client disconnected while compiling' });
    case 'exec-failed': {
      const text = `failed to exec ${ran.compiler}: ${run.reason}`;
      const status = EXIT.COMPILER_MISSING << 8;
      return Promise.resolve({ ...base, result: 'COMPILE_ERROR', status, ret: EXIT.COMPILER_MISSING, reason: text,
        response: answer(status, serrLine(settings.pid, text), Buffer.alloc(0)) });
    }
    case 'timeout': {
      const status = EXIT.TIMEOUT << 8;
      const stderr = Buffer.concat([run.stderr, serrLine(settings.pid, 'Compilation takes too long, timeout.')]);
      return Promise.resolve({ ...base, result: 'COMPILE_TIMEOUT', status, ret: EXIT.TIMEOUT, reason: `killed after --job-lifetime ${settings.lifetimeMs / 1000}s`,
        response: answer(status, stderr, run.stdout) });
    }
    case 'exited':
      if (run.status !== 0) {
        return Promise.resolve({ ...base, result: 'COMPILE_ERROR', status: run.status, ret: 0, response: answer(run.status, run.stderr, run.stdout) });
      }
      return readObject().then(
        ({ object, depfile }) => ({ ...base, result: 'COMPILE_OK', status: 0, ret: 0, response: answer(0, run.stderr, run.stdout, object, depfile) }),
        (error: NodeJS.ErrnoException) => {
          const text = `cannot read the compiler's output: ${error.code ?? error.message}`;
          const status = EXIT.IO_ERROR << 8;
          return { ...base, result: 'OTHER', status, ret: EXIT.IO_ERROR, reason: text,
            response: answer(status, Buffer.concat([run.stderr, serrLine(settings.pid, text)]), run.stdout) };
        },
      );
  }
}

export interface JobOptions {
  /** Aborted when the client goes away. */
  readonly signal?: AbortSignal;
  /**
   * Takes the removal of what the job makes (temp files, captures, a pump tree) the moment it
   * exists: the job's owner (CompileJob) runs it after the answer is sent, so the client does
   * not wait for unlinks, and whatever way the job ends.
   */
  readonly hold: (release: () => Promise<void>) => void;
  /** What prepareCompileJob already did with this request's command line (protocols 1 and 2). */
  readonly prepared?: Promise<PreparedCompile>;
  /**
   * The client's socket, when nothing is queued on it: a protocol-1 job lets the compiler's exit
   * handler answer there directly (see NativeAnswer); other protocols answer through the stream.
   */
  readonly answerSocket?: number;
  /** The object cache step (CompileJob's): answers from the cache, or runs `compile` and stores. */
  readonly cache?: CacheStep;
}

/**
 * The object cache as a job sees it: given what the key is made of, it answers a hit the way
 * `compile` would have answered, or runs `compile` (and stores what it gave). `names` are the
 * summary line's compiler and input.
 */
export interface CacheStep {
  produce(input: JobKeyInput, compile: () => Promise<JobOutcome>, names: { readonly compiler: string; readonly input: string }): Promise<JobOutcome>;
}

/** The server's temp names in argv, as the cache key sees them: the same for every job. */
export const FIXED_NAMES = Object.freeze({ input: 'distccd-input', output: 'distccd-output', root: '/distccd-root' });

/** A protocol 1/2 job's temp files: the source (open, filled by `fill`), the object, the compiler's stdout and stderr. */
export interface JobFiles {
  readonly input: string;
  readonly output: string;
  /** The compiler's stdout and stderr files, closed with the temp files after the answer. */
  readonly captures: CaptureFiles;
  /** Writes the source into the input file (open since it was made) and closes it. */
  readonly fill: (source: Uint8Array) => void;
}

/** What a protocol 1/2 job settles from its command line alone, before the source arrives. */
export type PreparedCompile =
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'failed'; readonly error: Error }
  | {
      readonly kind: 'ready';
      readonly scan: ScannedArgs;
      /** The job's temp files, made at the first call (throws when TMPDIR cannot take them). */
      readonly files: () => JobFiles;
    };

/**
 * Scans and checks the command line and makes the job's temp files. The job calls it as soon as
 * ARGV is complete: the distcc client is still preprocessing then (it sends DOTI last), so none
 * of this is on the path from the source's arrival to the answer. The files' removal goes to
 * `hold` the moment they exist. `lazy` (a job with the object cache): the files are made only
 * when the job compiles, so a hit makes, writes and removes none.
 */
export async function prepareCompileJob(argv: readonly string[], settings: JobSettings, hold: (release: () => Promise<void>) => void, options: { readonly lazy?: boolean } = {}): Promise<PreparedCompile> {
  // Never rejects: the job starts this before it awaits it, and a rejection nobody handles
  // yet would end the process.
  try {
    return await prepare(argv, settings, hold, options.lazy === true);
  } catch (error) {
    return { kind: 'failed', error: error as Error };
  }
}

async function prepare(argv: readonly string[], settings: JobSettings, hold: (release: () => Promise<void>) => void, lazy: boolean): Promise<PreparedCompile> {
  const scanned = scanArgs(argv);
  if (!scanned.ok) return { kind: 'refused', reason: scanned.reason };
  const serverPath = serverPathOption(scanned.value.argv);
  if (serverPath !== undefined) return { kind: 'refused', reason: serverPath };
  const checked = await checkCompiler(scanned.value.argv, settings.policy);
  if (!checked.ok) return { kind: 'refused', reason: checked.reason };
  const scan: ScannedArgs = { ...scanned.value, argv: checked.argv };
  let made: JobFiles | undefined;
  const files = (): JobFiles => (made ??= makeFiles(scan, settings, hold));
  if (!lazy) {
    try {
      files();
    } catch (error) {
      return { kind: 'failed', error: error as Error };
    }
  }
  return { kind: 'ready', scan, files };
}

function makeFiles(scan: ScannedArgs, settings: JobSettings, hold: (release: () => Promise<void>) => void): JobFiles {
  const temps = new TempFiles(settings.tmpDir, { keep: settings.saveTemps, inline: settings.inlineCleanup });
  let held: number | undefined;
  let captures: CaptureFiles | undefined;
  const close = (): void => {
    if (held !== undefined) closeSync(held);
    held = undefined;
  };
  hold(async () => {
    close();
    captures?.close();
    await temps.removeAll();
  });
  try {
    const input = temps.open(tempExtensionFor(scan.input));
    held = input.fd;
    const output = temps.create(scan.assembleOnly ? '.s' : '.o');
    // Making a nameless file costs an inode each: done now, the two are ready when DOTI comes.
    captures = openCaptures(settings.tmpDir);
    const fill = (source: Uint8Array): void => {
      try {
        writeAll(input.fd, source);
      } finally {
        close();
      }
    };
    return { input: input.file, output, captures, fill };
  } catch (error) {
    close();
    throw error;
  }
}

/** Runs one protocol 1/2 job. */
export async function runCompileJob(request: CompileRequest, settings: JobSettings, options: JobOptions): Promise<JobOutcome> {
  const ctx: JobContext = { request, settings };
  const prep = await (options.prepared ?? prepareCompileJob(request.argv, settings, options.hold, { lazy: options.cache !== undefined }));
  if (prep.kind === 'refused') return refusal(ctx, prep.reason);
  if (prep.kind === 'failed') throw prep.error; // TMPDIR full or read-only: the job answers STAT 100
  const { scan } = prep;
  const doti = request.doti ?? Buffer.alloc(0);
  // Decompressed when the compiler needs it: a hit is keyed on the bytes as sent (see cache_key).
  const compile = async (): Promise<JobOutcome> => {
    let source: Buffer;
    try {
      source = request.protocol === 2 ? decompressLzo(doti) : doti;
    } catch (error) {
      return { ...refusal(ctx, `DOTI: ${(error as Error).message}`, { ret: EXIT.PROTOCOL_ERROR }), input: scan.input };
    }
    const files = prep.files(); // throws when TMPDIR cannot take them: the job answers STAT 100
    const argv = rewriteArgs(scan, { input: files.input, output: files.output });
    const answer = options.answerSocket !== undefined && request.protocol === 1 ? { socket: options.answerSocket, version: request.version, object: files.output } : undefined;
    // In the sandbox the job's two files stand at their own paths, the output alone writable.
    const sandbox = settings.sandbox === undefined ? undefined
      : { sandbox: settings.sandbox, cwd: settings.tmpDir, root: settings.tmpDir, binds: [{ from: files.input, to: files.input }, { from: files.output, to: files.output, writable: true }] };
    files.fill(source);
    const run = await runCompiler({ argv, cwd: settings.tmpDir, env: settings.env, nice: settings.nice, lifetimeMs: settings.lifetimeMs, signal: options.signal, captures: files.captures, answer, sandbox });
    return await outcomeOf(ctx, { run, compiler: argv[0]!, input: scan.input, readObject: async () => ({ object: readFileSync(files.output) }) });
  };
  if (options.cache === undefined) return compile();
  const ext = tempExtensionFor(scan.input);
  const fixed = rewriteArgs(scan, { input: FIXED_NAMES.input + ext, output: FIXED_NAMES.output + (scan.assembleOnly ? '.s' : '.o') });
  // argv[0] as run: rewriteArgs keeps the compiler where the temp names go.
  const input = request.protocol === 2 ? { sourceLzo: doti } : { source: doti };
  return options.cache.produce({ program: fixed[0]!, protocol: request.protocol === 1 ? 1 : 2, sandboxed: settings.sandbox !== undefined, argv: fixed, cwd: settings.tmpDir, ...input }, compile, { compiler: fixed[0]!, input: scan.input });
}
