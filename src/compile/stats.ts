// The --stats counters and the page distccd serves on --stats-port (distcc src/stats.c).
// Load balancers scrape this page, so its bytes follow the C server exactly: an HTTP/1.0 header
// block, "argv /distccd", then one "name value" line per field between <distccstats> tags, with
// bare \n line ends, in the C order; dcc_free_mem (newer upstream, distcc PR #523) comes last.
//
// Exports:
//   JobResult                       the summary-line results: COMPILE_OK ... OTHER (+ TCP_ACCEPT)
//   DistccStats                     counters; record(result, job?) after each job; snapshot(now)
//   samplePointsIn(at, start, stop) how many of a kid sample's 60 points a job interval covers
//   renderStatsPage(snapshot, host) the page as a string (host: HostReadings from host_load.ts)
//   createStatsHandler(stats, opts) ConnectionHandler answering the page to any request
// The clock is a parameter (options.now), so averages are testable without waiting.

import type { Connection, ConnectionHandler } from '../activation/connection';
import { createHostReader, type HostReadings } from './host_load';

export const JOB_RESULTS = ['TCP_ACCEPT', 'REJ_BAD_REQ', 'REJ_OVERLOAD', 'COMPILE_OK', 'COMPILE_ERROR', 'COMPILE_TIMEOUT', 'CLI_DISCONN', 'OTHER'] as const;
export type JobResult = (typeof JOB_RESULTS)[number];

/** Results that ran the compiler and so count in dcc_num_compiles (as in dcc_stats_process). */
const COUNTS_AS_COMPILE: ReadonlySet<JobResult> = new Set(['COMPILE_OK', 'COMPILE_ERROR', 'COMPILE_TIMEOUT', 'CLI_DISCONN']);

export interface FinishedJob {
  readonly compiler: string;
  /** The input file as the client named it. */
  readonly file: string;
  readonly startMs: number;
  readonly stopMs: number;
}

export interface StatsSnapshot {
  readonly counters: Readonly<Record<JobResult, number>>;
  readonly longestJob: string;
  readonly longestJobCompiler: string;
  /** -1 until a job succeeded (as distccd prints). */
  readonly longestJobMs: number;
  readonly maxKids: number;
  readonly avgKids: readonly [number, number, number];
  readonly numCompiles: readonly [number, number, number];
}

const SLOT_MS = 3000; // distccd's 3-second compile time series
const SLOTS = 300; // 15 minutes
const MINUTE = 60_000;
const MAX_NAME = 1023; // MAX_FILENAME_LEN - 1 in stats.c
const MAX_INTERVALS = 100_000; // bound on remembered job intervals (2 minutes' worth)

/** Names go on one page line: control characters would forge extra fields. */
function pageSafe(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]/g, '?');
  return clean === '' ? 'none' : clean.slice(0, MAX_NAME);
}

/**
 * How many of the sample points of the minute ending at `at` (at - 60 s, at - 61 s ... at - 119 s)
 * fall in [start, stop]. Counted per interval in a few steps rather than by testing all 60 points
 * against every interval: a busy server holds up to MAX_INTERVALS of them, and the per-point loop
 * stalled the daemon for tens of milliseconds once a minute. The points fall as t grows, so those
 * at or before `stop` are t >= lo and those at or after `start` t <= hi; the estimates from the
 * division are settled with the same comparisons as a per-point test, so the count is the same.
 */
export function samplePointsIn(at: number, start: number, stop: number): number {
  let lo = Math.min(120, Math.max(60, Math.ceil((at - stop) / 1000)));
  while (lo > 60 && at - (lo - 1) * 1000 <= stop) lo--;
  while (lo < 120 && at - lo * 1000 > stop) lo++;
  let hi = Math.max(59, Math.min(119, Math.floor((at - start) / 1000)));
  while (hi < 119 && at - (hi + 1) * 1000 >= start) hi++;
  while (hi > 59 && at - hi * 1000 < start) hi--;
  const n = hi - lo + 1;
  return n > 0 ? n : 0;
}

export class DistccStats {
  readonly #maxKids: number;
  readonly #now: () => number;
  readonly #counters: Record<JobResult, number>;
  #longest = { ms: -1, file: 'none', compiler: 'none' };
  /**
   * COMPILE_OK intervals from the last two minutes, for the average number of busy kids, in the
   * order they were recorded; those before #head have expired (dropped in batches: a busy server
   * records thousands a minute, and filtering them all on every job made each job cost more).
   */
  #intervals: Array<{ start: number; stop: number }> = [];
  #head = 0;
  #kidSamples: number[] = []; // newest last, at most 15 one-minute samples
  #lastKidSample: number | undefined;
  #compileSlots: Array<{ slot: number; count: number }> = [];

  constructor(options: { readonly maxKids: number; readonly now?: () => number }) {
    if (!Number.isInteger(options.maxKids) || options.maxKids < 0) throw new RangeError(`maxKids must be a whole number, got ${options.maxKids}`);
    this.#maxKids = options.maxKids;
    this.#now = options.now ?? Date.now;
    this.#counters = Object.fromEntries(JOB_RESULTS.map((r) => [r, 0])) as Record<JobResult, number>;
  }

  /** Counts one event; a COMPILE_OK with its job also feeds the longest job and the kid averages. */
  record(result: JobResult, job?: FinishedJob): void {
    const now = this.#now();
    this.#sampleKids(now);
    this.#counters[result]++;
    if (COUNTS_AS_COMPILE.has(result)) this.#countCompile(now);
    if (result !== 'COMPILE_OK' || job === undefined) return;
    const ms = Math.max(0, Math.round(job.stopMs - job.startMs));
    if (ms > this.#longest.ms) this.#longest = { ms, file: pageSafe(job.file), compiler: pageSafe(job.compiler) };
    this.#intervals.push({ start: job.startMs, stop: job.stopMs });
    const cutoff = now - 2 * MINUTE;
    while (this.#head < this.#intervals.length && this.#intervals[this.#head]!.stop < cutoff) this.#head++;
    this.#head = Math.max(this.#head, this.#intervals.length - MAX_INTERVALS);
    if (this.#head > 1024 && this.#head * 2 > this.#intervals.length) {
      this.#intervals = this.#intervals.slice(this.#head);
      this.#head = 0;
    }
  }

  snapshot(): StatsSnapshot {
    const now = this.#now();
    this.#sampleKids(now);
    const slot = Math.floor(now / SLOT_MS);
    const inLast = (slots: number): number => this.#compileSlots.filter((s) => s.slot > slot - slots).reduce((n, s) => n + s.count, 0);
    const avg = (n: number): number => {
      const recent = this.#kidSamples.slice(-n);
      return Math.floor(recent.reduce((a, b) => a + b, 0) / n);
    };
    return {
      counters: { ...this.#counters },
      longestJob: this.#longest.file,
      longestJobCompiler: this.#longest.compiler,
      longestJobMs: this.#longest.ms,
      maxKids: this.#maxKids,
      avgKids: [this.#kidSamples.length === 0 ? 0 : this.#kidSamples[this.#kidSamples.length - 1]!, avg(5), avg(15)],
      numCompiles: [inLast(20), inLast(100), inLast(SLOTS)],
    };
  }

  #countCompile(now: number): void {
    const slot = Math.floor(now / SLOT_MS);
    const last = this.#compileSlots[this.#compileSlots.length - 1];
    if (last !== undefined && last.slot === slot) last.count++;
    else this.#compileSlots.push({ slot, count: 1 });
    while (this.#compileSlots.length > 0 && this.#compileSlots[0]!.slot <= slot - SLOTS) this.#compileSlots.shift();
  }

  /**
   * Once a minute distccd averages, over each second from 2 to 1 minutes ago, how many finished
   * compiles were running then (jobs only register when they end). Minutes nobody asked about are
   * filled in when the next call comes.
   */
  #sampleKids(now: number): void {
    if (this.#lastKidSample !== undefined && now - this.#lastKidSample < MINUTE) return;
    let at = this.#lastKidSample === undefined ? now : this.#lastKidSample + MINUTE;
    if (now - at > 15 * MINUTE) at = now - 15 * MINUTE;
    for (; at <= now; at += MINUTE) {
      let total = 0;
      for (let k = this.#head; k < this.#intervals.length; k++) {
        const i = this.#intervals[k]!;
        total += samplePointsIn(at, i.start, i.stop);
      }
      this.#kidSamples.push(Math.floor(total / 60));
      if (this.#kidSamples.length > 15) this.#kidSamples.shift();
      this.#lastKidSample = at;
    }
  }
}

export function renderStatsPage(s: StatsSnapshot, host: HostReadings): string {
  const c = s.counters;
  const int = (n: number): string => String(Math.trunc(n));
  const lines = [
    'HTTP/1.0 200 OK',
    'Content-Type: text/plain',
    'Connection: close',
    '',
    'argv /distccd',
    '<distccstats>',
    `dcc_tcp_accept ${c.TCP_ACCEPT}`,
    `dcc_rej_bad_req ${c.REJ_BAD_REQ}`,
    `dcc_rej_overload ${c.REJ_OVERLOAD}`,
    `dcc_compile_ok ${c.COMPILE_OK}`,
    `dcc_compile_error ${c.COMPILE_ERROR}`,
    `dcc_compile_timeout ${c.COMPILE_TIMEOUT}`,
    `dcc_cli_disconnect ${c.CLI_DISCONN}`,
    `dcc_other ${c.OTHER}`,
    `dcc_longest_job ${pageSafe(s.longestJob)}`,
    `dcc_longest_job_compiler ${pageSafe(s.longestJobCompiler)}`,
    `dcc_longest_job_time_msecs ${int(s.longestJobMs)}`,
    `dcc_max_kids ${int(s.maxKids)}`,
    `dcc_avg_kids1 ${int(s.avgKids[0])}`,
    `dcc_avg_kids2 ${int(s.avgKids[1])}`,
    `dcc_avg_kids3 ${int(s.avgKids[2])}`,
    `dcc_current_load ${int(host.currentLoad)}`,
    `dcc_load1 ${host.loadavg[0].toFixed(2)}`,
    `dcc_load2 ${host.loadavg[1].toFixed(2)}`,
    `dcc_load3 ${host.loadavg[2].toFixed(2)}`,
    `dcc_num_compiles1 ${int(s.numCompiles[0])}`,
    `dcc_num_compiles2 ${int(s.numCompiles[1])}`,
    `dcc_num_compiles3 ${int(s.numCompiles[2])}`,
    `dcc_num_procstate_D ${int(host.procstateD)}`,
    `dcc_max_RSS ${int(host.maxRss)}`,
    `dcc_max_RSS_name ${host.maxRssName === '' ? '' : pageSafe(host.maxRssName)}`,
    `dcc_io_rate ${int(host.ioRate)}`,
    `dcc_free_space ${int(host.freeSpaceMb)} MB`,
    `dcc_free_mem ${int(host.freeMemMb)} MB`,
    '</distccstats>',
  ];
  return lines.join('\n') + '\n';
}

export interface StatsHandlerOptions {
  /** The same --allow list as the compile port; peers it refuses get the socket closed, no reply. */
  readonly access?: { allows(address: string): boolean };
  /** Host readings (default: createHostReader() on /proc and tmpDir). */
  readonly readHost?: () => Promise<HostReadings>;
  /** TMPDIR of the jobs, for dcc_free_space (default /tmp); unused when readHost is given. */
  readonly tmpDir?: string;
  /** How long to keep reading what the client sends after the reply, so closing sends no RST. */
  readonly drainMs?: number;
}

/** A handler for the stats listener: any request (or none) gets the page, then the socket closes. */
export function createStatsHandler(stats: DistccStats, options: StatsHandlerOptions = {}): ConnectionHandler {
  const readHost = options.readHost ?? createHostReader(options.tmpDir === undefined ? {} : { tmpDir: options.tmpDir });
  const drainMs = options.drainMs ?? 2000;
  return async (conn: Connection): Promise<void> => {
    const { stream, peer } = conn;
    if (options.access !== undefined && peer.kind === 'tcp' && !options.access.allows(peer.address)) {
      stream.destroy();
      return;
    }
    const page = renderStatsPage(stats.snapshot(), await readHost());
    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        stream.off('end', finish);
        stream.off('close', finish);
        stream.off('error', finish);
        resolve();
      };
      stream.on('data', () => undefined); // the request is ignored, as distccd does, but drained
      stream.once('end', finish);
      stream.once('close', finish);
      stream.once('error', finish);
      stream.end(page);
      timer = setTimeout(finish, drainMs);
      timer.unref();
    });
  };
}
