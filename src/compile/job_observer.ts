// What a compile job tells whoever watches the daemon (the metrics and the status page, in
// src/metrics): when it starts, each phase it enters, and how it ends. The engine knows nothing of
// Prometheus or HTTP; without an observer a job pays one undefined check per phase.

import type { JobResult } from './stats';

/** A job's phases in order: reading the request, waiting for a slot, compiling, answering. */
export type JobPhase = 'receive' | 'queue' | 'compile' | 'send';

/** What the job knows once its request is in. */
export interface JobRequestFacts {
  /** 1, 2 or 3 (pump). */
  readonly protocol: number;
  readonly argv: readonly string[];
}

/** How a job ended, as the summary line says it; bytes as counted on the connection. */
export interface JobEnd {
  readonly result: JobResult;
  readonly compiler: string;
  readonly input: string;
  /** Why a refusal or failure happened (free text, for the status page only). */
  readonly reason?: string;
}

/** One job's reporter, from JobObserver.begin; every call takes the time it happened. */
export interface JobWatch {
  /** The request is complete (the job now waits for a slot). */
  requested(facts: JobRequestFacts, atMs: number): void;
  /** The job entered `phase` ('compile' once it holds a slot, 'send' once the compiler is done). */
  entered(phase: JobPhase, atMs: number): void;
  /** The job ended; `ending` is undefined when the session failed without a summary. */
  ended(ending: JobEnd | undefined, atMs: number): void;
}

export interface JobObserver {
  /** A connection was accepted and its job began (receiving). */
  begin(ids: { readonly conn: number; readonly peer: string }, atMs: number): JobWatch;
  /** A connection refused before any job (the --allow list). */
  denied(peer: string): void;
  /** Bytes one connection moved, by protocol (0 when the request never said). */
  transferred(protocol: number, bytesIn: number, bytesOut: number): void;
}
