// Asking a compiler about itself, for the two parts that must know what it runs: the object
// cache's key (object_cache/compiler_identity.ts: who the compiler is) and the sandbox's mounts
// (sandbox/compiler_mounts.ts: what it must see). Both find programs as execvp(3) does and run the
// driver's probes (-print-prog-name, -dumpfullversion, -print-search-dirs, -E -v, ldd) the same
// way: here, once.
//
// Exports: resolveProgram(name, searchPath, { cwd, seen }), runProbe(file, args, env, timeoutMs)

import { execFile, type ExecFileException } from 'node:child_process';
import { accessSync, constants as C, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The first executable regular file `name` in `searchPath` (a PATH string), as execvp(3) finds it;
 * a name with a slash is itself. Relative names and PATH entries are taken from `cwd` (default:
 * this process's). The path is as found, not resolved through links. `seen` gets each directory
 * searched. A directory named twice in PATH is tried once: it could only find what it found first.
 */
export function resolveProgram(name: string, searchPath: string, options: { readonly cwd?: string; readonly seen?: Set<string> } = {}): string | undefined {
  const candidates = name.includes('/') ? [name] : [...new Set(searchPath.split(':').map((dir) => path.join(dir === '' ? '.' : dir, name)))];
  for (const candidate of candidates) {
    const file = options.cwd === undefined ? path.resolve(candidate) : path.resolve(options.cwd, candidate);
    options.seen?.add(path.dirname(file));
    try {
      // No throw for a missing file, the common miss (an exception costs ~0.1 ms cold, measured).
      if (statSync(file, { throwIfNoEntry: false })?.isFile() !== true) continue;
      accessSync(file, C.X_OK);
      return file;
    } catch {
      // Not here (a directory we may not search), or not executable: the next PATH entry.
    }
  }
  return undefined;
}

/** What a probe said: the error execFile gave (null: exit 0), and its stdout and stderr. */
export interface ProbeAnswer {
  readonly error: ExecFileException | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/**
 * Runs `file args` with `env` and an empty stdin, killed (SIGKILL) after `timeoutMs`; never
 * rejects: a program that cannot run or finish answers with its error.
 */
export function runProbe(file: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ProbeAnswer> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, encoding: 'buffer' }, (error, stdout, stderr) => {
      resolve({ error, stdout, stderr });
    });
    child.stdin?.on('error', () => {}); // a probe that exits before reading: nothing to tell
    child.stdin?.end();
  });
}
