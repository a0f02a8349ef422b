// Runs the compiler of one job (C: dcc_spawn_child and dcc_collect_child in exec.c and serve.c).
// The child gets stdin /dev/null, its own process group (so a timeout or a client that gave up
// kills gcc and every cc1/as it started), cwd TMPDIR, a lower priority, and its stdout/stderr
// captured through pipes. The answer is the raw wait status, exactly what STAT carries.
//
// Unlike the C server there is no polling: the child's exit, the job lifetime timer and the
// client's EOF are events, so a job costs no fixed second in --inetd or --no-fork mode.

import { spawn } from 'node:child_process';
import os from 'node:os';

/** Most bytes kept from the compiler's stdout or stderr; the rest is dropped with a note. */
export const MAX_CAPTURE_BYTES = 16 * 1024 * 1024;

export interface CompilerRun {
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Added to the daemon's own priority (setpriority), as distccd's --nice. */
  readonly nice: number;
  /** Kill after this long (0 = never): --job-lifetime. */
  readonly lifetimeMs: number;
  /** Aborted when the client goes away. */
  readonly signal?: AbortSignal;
}

export type CompilerOutcome =
  | { readonly kind: 'exited'; readonly status: number; readonly stdout: Buffer; readonly stderr: Buffer }
  | { readonly kind: 'timeout'; readonly stdout: Buffer; readonly stderr: Buffer }
  | { readonly kind: 'aborted' }
  | { readonly kind: 'exec-failed'; readonly reason: string };

/** Raw wait status as waitpid reports it: exit << 8, or the signal number (core bit unknown here). */
export function waitStatusOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal !== null) return (os.constants.signals[signal] ?? 0) & 0x7f;
  return ((code ?? 0) & 0xff) << 8;
}

function collect(stream: NodeJS.ReadableStream | null): { chunks: Buffer[]; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  let size = 0;
  let dropped = 0;
  // Keep the first MAX_CAPTURE_BYTES exactly and drop everything after: a chunk that straddles
  // the cap is cut, never skipped whole (which both lost the bytes that fitted and let later,
  // smaller chunks in after a hole).
  stream?.on('data', (chunk: Buffer) => {
    const room = MAX_CAPTURE_BYTES - size;
    const kept = room <= 0 ? undefined : chunk.length <= room ? chunk : chunk.subarray(0, room);
    if (kept !== undefined) {
      chunks.push(kept);
      size += kept.length;
    }
    dropped += chunk.length - (kept?.length ?? 0);
  });
  return {
    chunks,
    bytes: () => {
      const all = Buffer.concat(chunks, size);
      return dropped === 0 ? all : Buffer.concat([all, Buffer.from(`\n[distccd: ${dropped} more bytes dropped]\n`)]);
    },
  };
}

export function runCompiler(run: CompilerRun): Promise<CompilerOutcome> {
  return new Promise((resolve) => {
    if (run.signal?.aborted === true) {
      resolve({ kind: 'aborted' });
      return;
    }
    const child = spawn(run.argv[0]!, run.argv.slice(1), {
      cwd: run.cwd,
      env: run.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // setsid: its own process group, killed as a whole
      windowsHide: true,
    });
    let ending: 'timeout' | 'aborted' | undefined;
    let timer: NodeJS.Timeout | undefined;
    const out = collect(child.stdout);
    const err = collect(child.stderr);
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const onAbort = (): void => {
      ending ??= 'aborted';
      killGroup();
    };
    const finish = (outcome: CompilerOutcome): void => {
      if (timer !== undefined) clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      // spawn() failed: exec of the compiler (ENOENT, EACCES) or fork itself.
      if (child.pid === undefined) finish({ kind: 'exec-failed', reason: `${error.code ?? ''} ${error.message}`.trim() });
    });
    if (child.pid !== undefined) {
      if (run.nice !== 0) {
        try {
          os.setPriority(child.pid, Math.min(19, os.getPriority(0) + run.nice));
        } catch {
          // Not allowed to change priority (e.g. a negative --nice without privilege): run as is.
        }
      }
      if (run.lifetimeMs > 0) {
        timer = setTimeout(() => {
          ending ??= 'timeout';
          killGroup();
        }, run.lifetimeMs);
      }
      run.signal?.addEventListener('abort', onAbort, { once: true });
    }
    child.once('close', (code, signal) => {
      if (child.pid === undefined) return;
      if (ending === 'aborted') finish({ kind: 'aborted' });
      else if (ending === 'timeout') finish({ kind: 'timeout', stdout: out.bytes(), stderr: err.bytes() });
      else finish({ kind: 'exited', status: waitStatusOf(code, signal), stdout: out.bytes(), stderr: err.bytes() });
    });
  });
}
