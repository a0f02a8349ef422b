// distccd's metrics and status: a JobObserver (compile/job_observer) that counts jobs by result,
// times each phase (receive, queue wait, compile, send), counts bytes by protocol and
// connections, and keeps the job board of the status page. Prometheus names follow the
// conventions: distccd_jobs_total{result="ok"}, units in names (_seconds, _bytes).

import type { Registry } from 'prom-client';
import type { JobEnd, JobObserver, JobPhase, JobRequestFacts, JobWatch } from '../compile/job_observer';
import { isSource } from '../compile/args';
import type { JobResult } from '../compile/stats';
import { CountVec, HistogramVec, ReadValue, SECONDS_BUCKETS, type CountSlot, type HistogramSlot } from './instruments';
import { JobBoard, type BoardJob } from './job_board';
import { RateWindow } from './rate_window';
import type { ObjectCacheStats } from '../compile/object_cache/object_cache';
import { watchObjectCache } from './object_cache_metrics';
import { humanMs, type StatusView } from './status_page';

/** The result label of each summary-line result; refusals carry a reason label too. */
type EndLabel = 'ok' | 'compile_failed' | 'timed_out' | 'client_gone' | 'error';
const RESULT_LABEL: Readonly<Record<JobResult, EndLabel | 'refused' | 'accepted'>> = {
  TCP_ACCEPT: 'accepted', // never a job's end; here for completeness of the table
  COMPILE_OK: 'ok',
  COMPILE_ERROR: 'compile_failed',
  REJ_BAD_REQ: 'refused',
  REJ_OVERLOAD: 'refused',
  COMPILE_TIMEOUT: 'timed_out',
  CLI_DISCONN: 'client_gone',
  OTHER: 'error',
};

/** Why a job was refused, bounded: the --allow list, an unreadable request, or a request that
 * was read and refused (compiler not allowed, arguments distcc cannot run remotely). */
export type RefusalReason = 'access' | 'protocol' | 'request' | 'overload';

const PHASES: readonly JobPhase[] = ['receive', 'queue', 'compile', 'send'];

export class DistccdMetrics implements JobObserver {
  readonly registry: Registry;
  readonly board = new JobBoard();
  readonly #now: () => number;
  readonly #jobs: CountVec;
  /** The slot of each job end, bound at start: no label set is looked up per job. */
  readonly #ended: Readonly<Record<EndLabel | RefusalReason, CountSlot>>;
  readonly #phase: Record<JobPhase, HistogramSlot>;
  readonly #bytesIn: CountVec;
  readonly #bytesOut: CountVec;
  /** Bytes slots by protocol (in, out), bound on a protocol's first job. */
  readonly #bytes: Array<readonly [CountSlot, CountSlot] | undefined> = [];
  readonly #connections: CountSlot;
  readonly #totals = { ended: 0 };
  readonly #rate: RateWindow;
  #cache: (() => { hits: number; misses: number; ratio: number | null }) | undefined;

  constructor(registry: Registry, options: { readonly now?: () => number } = {}) {
    this.registry = registry;
    this.#now = options.now ?? Date.now;
    this.#jobs = new CountVec(registry, { name: 'distccd_jobs_total', help: 'Compile jobs ended, by result (refused ones by reason).', type: 'counter' });
    const jobs = this.#jobs;
    this.#ended = {
      ok: jobs.child({ result: 'ok' }),
      compile_failed: jobs.child({ result: 'compile_failed' }),
      timed_out: jobs.child({ result: 'timed_out' }),
      client_gone: jobs.child({ result: 'client_gone' }),
      error: jobs.child({ result: 'error' }),
      access: jobs.child({ result: 'refused', reason: 'access' }),
      protocol: jobs.child({ result: 'refused', reason: 'protocol' }),
      request: jobs.child({ result: 'refused', reason: 'request' }),
      // Shown once a job was refused for load (only then: distcc clients rarely meet it).
      get overload() {
        return jobs.child({ result: 'refused', reason: 'overload' });
      },
    };
    const phases = new HistogramVec(registry, { name: 'distccd_job_phase_duration_seconds', help: 'Time jobs spent in each phase: receive (the request), queue (waiting for a --jobs slot), compile, send (the answer).', buckets: SECONDS_BUCKETS });
    this.#phase = Object.fromEntries(PHASES.map((phase) => [phase, phases.child({ phase })])) as Record<JobPhase, HistogramSlot>;
    this.#bytesIn = new CountVec(registry, { name: 'distccd_received_bytes_total', help: 'Bytes read from clients, by distcc protocol (0: the request never said).', type: 'counter' });
    this.#bytesOut = new CountVec(registry, { name: 'distccd_sent_bytes_total', help: 'Bytes sent to clients, by distcc protocol.', type: 'counter' });
    this.#connections = new CountVec(registry, { name: 'distccd_connections_total', help: 'Client connections accepted (denied ones included).', type: 'counter' }).child();
    new ReadValue(registry, { name: 'distccd_connections_open', help: 'Client connections being served now.', type: 'gauge', read: () => this.board.running(0).length });
    new ReadValue(registry, { name: 'distccd_jobs_running', help: 'Jobs holding a --jobs slot (compiling) now.', type: 'gauge', read: () => this.board.count('compile') });
    new ReadValue(registry, { name: 'distccd_jobs_queued', help: 'Jobs with a complete request waiting for a --jobs slot now.', type: 'gauge', read: () => this.board.count('queue') });
    this.#rate = new RateWindow(() => this.#totals.ended, { now: this.#now });
  }

  begin(ids: { readonly conn: number; readonly peer: string }, atMs: number): JobWatch {
    this.#connections.value++;
    const job: BoardJob = { conn: ids.conn, client: ids.peer, compiler: '', file: '', protocol: 0, phase: 'receive', startedMs: atMs };
    this.board.start(job);
    let since = atMs;
    let requested = false;
    const enter = (phase: JobPhase, at: number): void => {
      this.#phase[job.phase].observe(Math.max(0, at - since) / 1000);
      job.phase = phase;
      since = at;
    };
    return {
      requested: (facts: JobRequestFacts, at: number) => {
        requested = true;
        job.protocol = facts.protocol;
        job.compiler = facts.argv[0] ?? '';
        job.file = facts.argv.find((a, i) => i > 0 && !a.startsWith('-') && isSource(a)) ?? '';
        enter('queue', at);
      },
      entered: enter,
      ended: (ending: JobEnd | undefined, at: number) => {
        this.#phase[job.phase].observe(Math.max(0, at - since) / 1000);
        this.#totals.ended++;
        if (ending === undefined) {
          this.#ended.error.value++;
          this.board.finish(job, { compiler: job.compiler, file: job.file, result: 'UNFINISHED', endedMs: at });
          return;
        }
        const result = RESULT_LABEL[ending.result];
        const slot =
          result === 'refused' ? this.#ended[ending.result === 'REJ_OVERLOAD' ? 'overload' : requested ? 'request' : 'protocol'] : result === 'accepted' ? this.#jobs.child({ result }) : this.#ended[result];
        slot.value++;
        this.board.finish(job, {
          compiler: ending.compiler || job.compiler,
          file: ending.input || job.file,
          result: ending.result,
          ...(ending.reason === undefined ? {} : { reason: ending.reason }),
          endedMs: at,
        });
      },
    };
  }

  denied(peer: string): void {
    this.#connections.value++;
    this.#totals.ended++;
    this.#ended.access.value++;
    const now = this.#now();
    this.board.remember({ conn: 0, client: peer, compiler: '', file: '', result: 'DENIED', reason: 'denied by the --allow list', ms: 0, endedMs: now });
  }

  transferred(protocol: number, bytesIn: number, bytesOut: number): void {
    let slots = this.#bytes[protocol];
    if (slots === undefined) {
      const labels = { protocol: String(protocol) };
      slots = this.#bytes[protocol] = [this.#bytesIn.child(labels), this.#bytesOut.child(labels)];
    }
    slots[0].value += bytesIn;
    slots[1].value += bytesOut;
  }

  /** Connects the object cache's counters (hook for compile/object_cache). */
  watchObjectCache(read: () => ObjectCacheStats): void {
    this.#cache = watchObjectCache(this.registry, read);
  }

  /** What /status.json says about distccd: the raw figures and the page's tiles and tables. */
  status(): StatusView & Record<string, unknown> {
    const now = this.#now();
    const totals: Record<string, number> = {};
    for (const { labels, value } of this.#jobs.get().values) {
      const key = labels['result']!;
      totals[key] = (totals[key] ?? 0) + value;
    }
    const running = this.board.running(now);
    const recent = this.board.recent();
    const jobsPerMinute = this.#rate.perSecond(60) * 60;
    const cache = this.#cache?.() ?? null;
    const failed = (totals['compile_failed'] ?? 0) + (totals['timed_out'] ?? 0) + (totals['error'] ?? 0);
    return {
      running,
      recent,
      totals,
      jobsPerMinute,
      cache,
      tiles: [
        { label: 'compiling now', value: String(this.board.count('compile')) },
        { label: 'waiting for a slot', value: String(this.board.count('queue')), ...(this.board.count('queue') > 0 ? { tone: 'warn' as const } : {}) },
        { label: 'jobs / minute', value: jobsPerMinute.toFixed(1) },
        { label: 'ok', value: String(totals['ok'] ?? 0), tone: 'good' },
        { label: 'failed', value: String(failed), ...(failed > 0 ? { tone: 'bad' as const } : {}) },
        { label: 'refused', value: String(totals['refused'] ?? 0), ...((totals['refused'] ?? 0) > 0 ? { tone: 'warn' as const } : {}) },
        { label: 'client gone', value: String(totals['client_gone'] ?? 0) },
        cache === null ? { label: 'cache hit ratio (no object cache)', value: '–' } : { label: 'cache hit ratio', value: cache.ratio === null ? '–' : `${(cache.ratio * 100).toFixed(1)} %` },
      ],
      tables: [
        {
          title: 'Running now',
          columns: ['conn', 'client', 'file', 'compiler', 'phase', 'elapsed'],
          rows: running.map((j) => [j.conn, j.client, j.file || '…', j.compiler || '…', j.phase, humanMs(j.elapsedMs)]),
          empty: 'no job running',
        },
        {
          title: 'Recent jobs, newest first',
          columns: ['ended', 'client', 'file', 'compiler', 'result', 'time', 'reason'],
          rows: recent.map((j) => [new Date(j.endedMs).toISOString().slice(11, 19), j.client, j.file, j.compiler, j.result, humanMs(j.ms), j.reason ?? '']),
          empty: 'no job yet',
        },
      ],
    };
  }

  stop(): void {
    this.#rate.stop();
  }
}
