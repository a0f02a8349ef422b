// One compile job, owned by one object from the moment its command line is heard to the summary
// line: the job slot (--jobs), the temp files or pump tree, the compiler process (and with it the
// --job-lifetime timer, which runCompiler starts at the spawn and clears at the reap), the client's
// departure, the summary line and the stats record. Whatever the exit (answered, refused, compiler
// failed or killed, client gone, lifetime exceeded, the daemon stopping, which drains jobs to
// their end), `end` is the one place that lets go of all of it; a daemon that exits before a job
// ends (a drain that timed out) kills the job's compiler on its way out. The session
// (session.ts) only speaks the wire: it reads the request, hands it here, writes the answer.
//
// The steps of a job, in order, each one method here:
//
//   hear ARGV (prepare: protocols 1/2) -> run: take a slot -> produce (check, key, look up the
//   object cache; on a miss run the compiler and store) -> [session: answer] -> end: wait for
//   the hang-up, remove the files, summary, stats
//
// A step added later (a sandbox around the compiler) goes in `#produce`; whatever it holds it
// hands to `hold`, and `end` releases it with the rest. The object cache (object_cache/) is
// handed to the job functions as a CacheStep: they know what the key is made of, the cache
// decides hit or compile; the job keeps the state for its summary line.

import { tagAsC, type Logger } from '../log/logger';
import { EXIT } from '../errors';
import { prepareCompileJob, runCompileJob, serrLine, type CacheStep, type JobOutcome, type JobSettings, type PreparedCompile } from './job';
import type { JobSlots } from './job_slots';
import type { CacheEntry } from './object_cache/entry_codec';
import type { CacheState, ObjectCache } from './object_cache/object_cache';
import { runPumpJob } from './pump_job';
import type { JobObserver, JobWatch } from './job_observer';
import type { DistccStats } from './stats';
import { compressLzo } from './wire/lzo';
import type { CompileRequest } from './wire/request';
import { compressedFor } from './wire/response';

/** How long temp-file removal waits, after the answer, for the client to close its end. */
export const HANGUP_WAIT_MS = 1000;

/**
 * Why a job's signal aborts. A reason given up front spares abort() its default: a DOMException
 * with a captured stack trace, built on every job (clients hang up after every answer).
 */
const CLIENT_GONE = Object.freeze(new Error('the client closed the connection'));
const DAEMON_EXITING = Object.freeze(new Error('the daemon exited before the job ended'));

/** What a job needs from the daemon: shared by every job of a service. */
export interface JobService {
  readonly log: Logger;
  readonly job: JobSettings;
  readonly slots: JobSlots;
  readonly stats?: DistccStats;
  /** The metrics and status page (src/metrics): told each phase of each job. */
  readonly observer?: JobObserver;
  readonly now?: () => number;
  /** The object cache; undefined = off (--no-cache), and the summary line stays exactly C's. */
  readonly cache?: ObjectCache;
}

/** The fields of the summary line, and why the job went wrong when it did (for the log). */
export type JobEnding = Pick<JobOutcome, 'result' | 'status' | 'ret' | 'compiler' | 'input' | 'reason'>;

/** distccd's summary line: `client: PEER RESULT exit:N sig:N core:N ret:N time:Nms [COMPILER INPUT]`. */
export function summaryLine(peer: string, outcome: Pick<JobOutcome, 'result' | 'status' | 'ret' | 'compiler' | 'input'>, ms: number): string {
  const { status } = outcome;
  const exit = (status >> 8) & 0xff;
  const sig = status & 0x7f;
  const core = (status & 0x80) !== 0 ? 1 : 0;
  const names = outcome.result === 'COMPILE_OK' || outcome.result === 'COMPILE_ERROR' ? ` ${outcome.compiler} ${outcome.input}` : '';
  return `client: ${peer} ${outcome.result} exit:${exit} sig:${sig} core:${core} ret:${outcome.ret} time:${ms}ms${names}`;
}

/**
 * What a successful compile answered, as a cache entry; undefined for anything else (only exit 0
 * is stored). `lzo` (the answer of protocols 2/3): its parts LZO-compressed as the answer carries
 * them, so that a hit sends them as they are.
 */
function entryOf(outcome: JobOutcome, lzo: boolean): CacheEntry | undefined {
  const r = outcome.response;
  if (outcome.result !== 'COMPILE_OK' || r === undefined || r.status !== 0) return undefined;
  if (!lzo) return { object: r.object, depfile: r.depfile, stdout: r.stdout, stderr: r.stderr };
  return { object: compressLzo(r.object), depfile: r.depfile === undefined ? undefined : compressLzo(r.depfile), stdout: compressLzo(r.stdout), stderr: compressLzo(r.stderr), compressed: true };
}

export class CompileJob {
  /**
   * Jobs not yet ended. A daemon that exits with some (its drain on SIGTERM timed out, the
   * connection of an --inetd process was abandoned) aborts them on the way out, which kills their
   * compilers' process groups there and then: each compiler leads a session of its own, so
   * nothing else would stop it.
   */
  static readonly #unfinished = new Set<CompileJob>();
  static #exitHooked = false;

  static #abortUnfinished(): void {
    for (const job of CompileJob.#unfinished) job.#leave(DAEMON_EXITING);
  }

  readonly #service: JobService;
  readonly #conn: number;
  readonly #peer: string;
  readonly #now: () => number;
  readonly #start: number;
  /**
   * Why the job's client is gone; undefined while it is there. The AbortSignal that carries it
   * (to the slot queue, the compiler) is made only when one of them asks: on a hit nobody does,
   * and an AbortController made and aborted per job cost more than the rest of the job's end.
   */
  #goneReason: Error | undefined;
  #gone: AbortController | undefined;
  /** Set while `end` waits for the hang-up: called when the client goes. */
  #onGone: (() => void) | undefined;
  /** Removals of what the job made (temp files, captures, pump tree), run by `end`. */
  readonly #held: Array<() => Promise<void>> = [];
  #prepared: Promise<PreparedCompile> | undefined;
  #releaseSlot: (() => void) | undefined;
  #ended: Promise<void> | undefined;
  /** What the object cache did for this job (summary line); undefined until the cache step ran. */
  #cacheState: CacheState | undefined;
  readonly #watch: JobWatch | undefined;

  /** `conn` and `peer` name the connection in the log; the job's time runs from now. */
  constructor(service: JobService, ids: { readonly conn: number; readonly peer: string }) {
    this.#service = service;
    this.#conn = ids.conn;
    this.#peer = ids.peer;
    this.#now = service.now ?? Date.now;
    this.#start = this.#now();
    this.#watch = service.observer?.begin(ids, this.#start);
    CompileJob.#unfinished.add(this);
    if (!CompileJob.#exitHooked) {
      CompileJob.#exitHooked = true;
      process.once('exit', () => CompileJob.#abortUnfinished());
    }
  }

  /** Aborted once the client has gone. */
  get signal(): AbortSignal {
    if (this.#gone === undefined) {
      this.#gone = new AbortController();
      if (this.#goneReason !== undefined) this.#gone.abort(this.#goneReason);
    }
    return this.#gone.signal;
  }

  /** Whether the client has gone (what `signal.aborted` says, without making the signal). */
  get isGone(): boolean {
    return this.#goneReason !== undefined;
  }

  /** Takes the removal of something the job made, to run at its end. */
  hold(release: () => Promise<void>): void {
    this.#held.push(release);
  }

  /**
   * The command line is complete (its last ARGV arrived). Protocols 1 and 2: check it and make
   * the temp files now, while the client still preprocesses (it sends DOTI last), off the path
   * from the source to the answer; with the object cache, the files only when it misses.
   */
  heardArgv(version: number, argv: readonly string[]): void {
    // With the cache, the temp files wait for a miss: a hit makes none.
    if (version < 3) this.#prepared = prepareCompileJob(argv, this.#service.job, (release) => this.hold(release), { lazy: this.#service.cache !== undefined });
  }

  /** The client closed or broke its connection: whatever the job waits for, it waits no more. */
  clientGone(): void {
    this.#leave(CLIENT_GONE);
  }

  #leave(reason: Error): void {
    if (this.#goneReason !== undefined) return;
    this.#goneReason = reason;
    this.#gone?.abort(reason);
    this.#onGone?.();
  }

  /** Resolves when the client hangs up or after `ms`, whichever comes first. */
  #hangUp(ms: number): Promise<void> {
    if (this.#goneReason !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#onGone = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#onGone = done;
    });
  }

  /**
   * Waits for a job slot, then produces the outcome. The slot is given back as soon as the
   * compiler is done (the next job need not wait for this one's answer to be written).
   */
  async run(request: CompileRequest, options: { readonly answerSocket?: number } = {}): Promise<JobOutcome> {
    this.#watch?.requested(request, this.#now());
    try {
      this.#releaseSlot = await this.#service.slots.acquire(() => this.signal);
      this.#watch?.entered('compile', this.#now());
    } catch {
      return { result: 'CLI_DISCONN', status: 0, ret: EXIT.IO_ERROR, compiler: request.argv[0] ?? '', input: '', reason: 'client disconnected while waiting for a job slot' };
    }
    try {
      return await this.#produce(request, options.answerSocket);
    } catch (error) {
      // The server failed (TMPDIR full, a file vanished): say so, the client can still retry locally.
      const reason = (error as Error).message;
      const status = EXIT.DISTCC_FAILED << 8;
      return {
        result: 'OTHER', status, ret: EXIT.DISTCC_FAILED, compiler: request.argv[0] ?? '', input: '', reason,
        response: { version: request.version, status, stderr: serrLine(this.#service.job.pid, reason), stdout: Buffer.alloc(0), object: Buffer.alloc(0) },
      };
    } finally {
      // A job that got no slot never compiled: it goes from the queue straight to its end.
      if (this.#releaseSlot !== undefined) this.#watch?.entered('send', this.#now());
      this.#giveBackSlot();
    }
  }

  /** The request's outcome: the object cache's on a hit, else the compiler's. */
  #produce(request: CompileRequest, answerSocket: number | undefined): Promise<JobOutcome> {
    const cache = this.#cacheStep(request);
    const job = this;
    // The signal is made only if the job compiles (runCompiler reads it): a hit never does.
    // A compiler that answers the client itself leaves nothing to store: with a cache, the job answers.
    const options = { get signal(): AbortSignal { return job.signal; }, hold: (release: () => Promise<void>) => this.hold(release), prepared: this.#prepared, answerSocket: cache === undefined ? answerSocket : undefined, cache };
    return request.protocol === 3 ? runPumpJob(request, this.#service.job, options) : runCompileJob(request, this.#service.job, options);
  }

  #cacheStep(request: CompileRequest): CacheStep | undefined {
    const { cache, job } = this.#service;
    if (cache === undefined) return undefined;
    return {
      produce: (input, compile, names) => cache.produce(input, compile, {
        env: job.env,
        tmpDir: job.tmpDir,
        onState: (state) => (this.#cacheState = state),
        // The summary line, which closes the job, comes once its entry is written.
        onStoring: (written) => this.hold(() => written),
        entryOf: (compiled) => entryOf(compiled, compressedFor(request.version)),
        answer: (entry): JobOutcome => ({
          result: 'COMPILE_OK', status: 0, ret: 0, ...names,
          response: { version: request.version, status: 0, stderr: entry.stderr, stdout: entry.stdout, object: entry.object, depfile: entry.depfile, compressed: entry.compressed },
        }),
        // A miss answers with its entry's parts, as a hit of it will: compressed once, not again by the answer.
        answerMiss: (outcome, entry) => entry.compressed !== true || outcome.response === undefined ? outcome
          : { ...outcome, response: { ...outcome.response, stderr: entry.stderr, stdout: entry.stdout, object: entry.object, depfile: entry.depfile, compressed: true } },
      }),
    };
  }

  #giveBackSlot(): void {
    const release = this.#releaseSlot;
    this.#releaseSlot = undefined;
    release?.();
  }

  /**
   * The one place a job lets go: the slot (if still held), then, once the client has hung up
   * (`answered`: it saves the object and exits now, and the unlinks should not compete with it)
   * or at once, everything the job made; then the summary line and the stats record, whose time
   * runs to the answer (this call), what the client waited for, when there was one.
   * Without `ending` (the session failed unexpectedly) the job releases without a summary.
   * Idempotent: a second call waits for the first.
   */
  end(ending?: JobEnding, options: { readonly answered?: boolean } = {}): Promise<void> {
    this.#ended ??= this.#end(ending, options.answered === true);
    return this.#ended;
  }

  async #end(ending: JobEnding | undefined, answered: boolean): Promise<void> {
    const answeredAt = answered ? this.#now() : undefined;
    try {
      this.#giveBackSlot();
      if (answeredAt !== undefined) await this.#hangUp(HANGUP_WAIT_MS);
      await this.#prepared; // a preparation in flight registers its files first
      for (const release of this.#held.splice(0)) {
        await release().catch((error: Error) => this.#service.log.warning('cleanup failed', { conn: this.#conn, reason: error.message }));
      }
      if (ending !== undefined) this.#summarise(ending, answeredAt ?? this.#now());
    } finally {
      CompileJob.#unfinished.delete(this);
      this.#watch?.ended(ending, answeredAt ?? this.#now());
    }
  }

  /** The summary line closes the job; its time runs to the answer, what the client waited for. */
  #summarise(ending: JobEnding, endMs: number): void {
    const { log, stats } = this.#service;
    const ms = Math.max(0, Math.round(endMs - this.#start));
    if (ending.reason !== undefined) {
      // A client that gives up is routine (make -k, Ctrl-C); anything else deserves a warning.
      const level = ending.result === 'CLI_DISCONN' ? 'info' : 'warning';
      log.log(level, `job ${ending.result === 'REJ_BAD_REQ' ? 'refused' : 'failed'}`, { conn: this.#conn, peer: this.#peer, reason: ending.reason });
    }
    // In C's form (C logs it from dcc_job_summary): farms' log parsers grep it.
    // The cache's word comes after C's fields, so that parsers of C's line still read it.
    const cache = this.#service.cache === undefined ? '' : ` cache:${this.#cacheState ?? 'off'}`;
    log.notice(tagAsC('dcc_job_summary', summaryLine(this.#peer, ending, ms) + cache));
    stats?.record(ending.result, { compiler: ending.compiler, file: ending.input, startMs: this.#start, stopMs: endMs });
  }
}
