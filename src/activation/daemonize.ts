// Detaching without fork(): the starting process re-spawns itself detached (new session, stdio on
// /dev/null) with a pipe on fd 3. The daemon binds, writes its pid file, drops privileges and then
// reports "ready" (or the error) on that pipe; the starting process exits 0 only after "ready",
// so `distccd --daemon && distcc ...` never races the bind. The starting process needs no more of
// the activation layer than this file (and a CLI none of its engine): it serves nothing.

import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { DistkitError, EXIT } from '../errors';
import { flushLogging } from '../log/sinks';
import { protectStderr } from '../log/stdio';
import { clearListenEnv } from './listen_fds';
import type { ModeDecision } from './mode';
import type { RunningService, ServiceOptions } from './options';
import { checkPidFile } from './pid_file';

/** Set in the daemon's environment by the starting process; removed by the daemon at once. */
const DETACHED_ENV = 'DISTKIT_DETACHED_REPORT_FD';
const REPORT_FD = 3;
/** How long the starting process waits for the daemon to listen. */
const START_TIMEOUT_MS = 60_000;

export interface DetachedReport {
  readonly pid: number;
  readonly addresses: readonly string[];
}

/** The blob node started this process from (scripts/snapshot.ts), as given; undefined for a script. */
export function snapshotBlob(execArgv: readonly string[] = process.execArgv): string | undefined {
  const i = execArgv.findIndex((a) => a === '--snapshot-blob' || a.startsWith('--snapshot-blob='));
  if (i < 0) return undefined;
  const arg = execArgv[i]!;
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : execArgv[i + 1];
}

/** Whether node started this process from a startup snapshot rather than a script. */
export function startedFromSnapshot(): boolean {
  return snapshotBlob() !== undefined;
}

/** Whether this process is a daemon a starting process spawned (and waits to hear from). */
export function isDetachedDaemon(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[DETACHED_ENV] !== undefined && Number(env[DETACHED_ENV]) === REPORT_FD;
}

/** In the daemon: the fd to report on, taken out of the environment so children do not see it. */
export function takeReportFd(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const detached = isDetachedDaemon(env);
  delete env[DETACHED_ENV];
  return detached ? REPORT_FD : undefined;
}

/** In the daemon: tell the starting process it is listening. */
export function reportReady(fd: number, addresses: readonly string[]): void {
  writeReport(fd, { ready: true, pid: process.pid, addresses });
}

/** In the daemon: tell the starting process why it failed (it prints it and exits 1). */
export function reportFailure(fd: number, error: unknown): void {
  const code = error instanceof DistkitError ? error.code : 'start-failed';
  const message = error instanceof Error ? error.message : String(error);
  writeReport(fd, { ready: false, code, message });
}

function writeReport(fd: number, report: object): void {
  try {
    fs.writeSync(fd, `${JSON.stringify(report)}\n`);
    fs.closeSync(fd);
  } catch {
    // The starting process died: nobody is waiting for the report.
  }
}

/**
 * In the starting process: spawn the daemon and wait for its report. Resolves with its pid and
 * addresses, or throws the daemon's own error.
 */
export async function spawnDetached(): Promise<DetachedReport> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use: inetd mode starts a process per job
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  // Started from a startup snapshot (`node --snapshot-blob B -- ARGS`), argv[1] is our first
  // argument, not a script: the "--" must come back, or node would take ARGS as its own options.
  const child = spawn(process.execPath, [...process.execArgv, ...(startedFromSnapshot() ? ['--'] : []), ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [DETACHED_ENV]: String(REPORT_FD) },
  });
  const pipe = child.stdio[REPORT_FD] as Readable;
  let text = '';
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DistkitError('detach-failed', `The daemon (pid ${child.pid}) did not report within ${START_TIMEOUT_MS / 1000}s`)), START_TIMEOUT_MS);
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      text += chunk;
    });
    pipe.once('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new DistkitError('detach-failed', `Cannot start the daemon: ${error.message}`, { cause: error }));
    });
  });
  child.unref();
  let report: { ready?: boolean; pid?: number; addresses?: string[]; code?: string; message?: string };
  try {
    report = JSON.parse(line.trim()) as typeof report;
  } catch {
    throw new DistkitError('detach-failed', `The daemon (pid ${child.pid}) exited before it was listening (see its log)`);
  }
  if (report.ready !== true) {
    throw new DistkitError(report.code ?? 'detach-failed', report.message ?? 'The daemon failed to start (see its log)');
  }
  return { pid: report.pid ?? child.pid ?? 0, addresses: report.addresses ?? [] };
}

/**
 * Whether this process only starts the daemon (standalone, detaching, and not the daemon itself):
 * startDaemon spawns it and waits for its report, and nothing is served here, so a CLI need not
 * build its engine.
 */
export function startsDaemonOnly(decision: ModeDecision, detach: boolean): boolean {
  return decision.kind === 'standalone' && detach && !isDetachedDaemon();
}

/** In the starting process of a detaching daemon: spawn it, and resolve once it listens (runService's first step). */
export async function startDaemon(options: Pick<ServiceOptions, 'program' | 'log' | 'pidFile'>, decision: ModeDecision): Promise<RunningService> {
  protectStderr(decision);
  clearListenEnv();
  const { log, pidFile } = options;
  log.notice('mode', { kind: decision.kind, why: decision.why, detach: true });
  if (pidFile !== undefined) checkPidFile(pidFile, options.program);
  const report = await spawnDetached();
  log.notice('detached', { pid: report.pid, on: report.addresses.join(',') });
  return { mode: `${decision.kind}: ${decision.why}`, decision, addresses: report.addresses, stop: () => Promise.resolve(), done: flushLogging().then(() => EXIT.OK) };
}
