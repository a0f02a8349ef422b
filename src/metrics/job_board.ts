// What distccd's status page shows of its jobs: those running now (client, file, compiler, phase,
// since when) and the last few hundred that ended, newest first. Filled by DistccdMetrics as jobs
// report their phases; read as JSON by the page.

import type { JobPhase } from '../compile/job_observer';
import type { JobResult } from '../compile/stats';

/** How many ended jobs the page lists. */
export const RECENT_JOBS = 300;

export interface BoardJob {
  readonly conn: number;
  readonly client: string;
  compiler: string;
  file: string;
  protocol: number;
  phase: JobPhase;
  readonly startedMs: number;
}

export interface EndedJob {
  readonly conn: number;
  readonly client: string;
  readonly compiler: string;
  readonly file: string;
  readonly result: JobResult | 'DENIED' | 'UNFINISHED';
  readonly reason?: string;
  readonly ms: number;
  readonly endedMs: number;
}

export class JobBoard {
  readonly #running = new Map<number, BoardJob>();
  readonly #ended: EndedJob[] = [];
  #next = 0;

  start(job: BoardJob): void {
    this.#running.set(job.conn, job);
  }

  finish(job: BoardJob, ended: Omit<EndedJob, 'conn' | 'client' | 'ms'>): void {
    this.#running.delete(job.conn);
    this.remember({ conn: job.conn, client: job.client, ms: Math.max(0, ended.endedMs - job.startedMs), ...ended });
  }

  /** Adds an ended job to the ring (a denied connection never had a running one). */
  remember(job: EndedJob): void {
    if (this.#ended.length < RECENT_JOBS) this.#ended.push(job);
    else this.#ended[this.#next] = job;
    this.#next = (this.#next + 1) % RECENT_JOBS;
  }

  /** Jobs in `phase` now. */
  count(phase: JobPhase): number {
    let n = 0;
    for (const job of this.#running.values()) if (job.phase === phase) n++;
    return n;
  }

  running(nowMs: number): Array<{ conn: number; client: string; compiler: string; file: string; protocol: number; phase: JobPhase; elapsedMs: number }> {
    return [...this.#running.values()].map((j) => ({ conn: j.conn, client: j.client, compiler: j.compiler, file: j.file, protocol: j.protocol, phase: j.phase, elapsedMs: Math.max(0, nowMs - j.startedMs) }));
  }

  /** Ended jobs, newest first. */
  recent(): EndedJob[] {
    const n = this.#ended.length;
    const out: EndedJob[] = [];
    for (let i = 1; i <= n; i++) out.push(this.#ended[(this.#next - i + n) % n]!);
    return out;
  }
}
