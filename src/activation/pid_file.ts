// The pid file of a standalone daemon: refuses a second start while the recorded process lives,
// replaces a stale one (dead pid, or a zombie nobody reaped: kill(pid, 0) succeeds on those),
// is written atomically only after a successful bind, and is removed at exit only if it is ours.

import fs from 'node:fs';
import path from 'node:path';
import { DistkitError } from '../errors';

/** Reads the pid recorded in `file`; undefined when the file is missing or holds no pid. */
export function readPidFile(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DistkitError('pid-file', `Cannot read pid file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** True when `pid` is a live process (not a zombie). EPERM means it exists under another user. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // "pid (comm) S ...": comm may contain spaces and parentheses, the state follows the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * Throws 'already-running' when `file` names a live process other than us; returns the stale
 * pid it held (to log the replacement), or undefined.
 */
export function checkPidFile(file: string, program: string): number | undefined {
  const pid = readPidFile(file);
  if (pid === undefined || pid === process.pid) return undefined;
  if (isProcessAlive(pid)) {
    throw new DistkitError(
      'already-running',
      `${program} is already running with pid ${pid} (pid file ${file}): stop it first, or give another --pid-file`,
    );
  }
  return pid;
}

/** Writes our pid atomically (temp file + rename) so a reader never sees a half-written file. */
export function writePidFile(file: string, pid: number = process.pid): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${pid}.tmp`);
  try {
    fs.writeFileSync(temp, `${pid}\n`, { mode: 0o644 });
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    // Debian's init script for distcc touches /var/run/distccd.pid, chowns it to distccd and
    // starts the daemon with --chuid: the file is ours to write, its directory is not.
    if ((error as NodeJS.ErrnoException).code === 'EACCES' && writeInPlace(file, pid)) return;
    throw new DistkitError('pid-file', `Cannot write pid file ${file}: ${(error as Error).message}`, { cause: error });
  }
}

function writeInPlace(file: string, pid: number): boolean {
  try {
    fs.writeFileSync(file, `${pid}\n`, { flag: 'r+' });
    fs.truncateSync(file, `${pid}\n`.length);
    return true;
  } catch {
    return false;
  }
}

/** Removes `file` if it still records `pid`; a failure (privileges dropped since) is not fatal. */
export function removePidFile(file: string, pid: number = process.pid): boolean {
  try {
    if (readPidFile(file) !== pid) return false;
    fs.unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}
