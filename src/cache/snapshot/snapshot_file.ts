// The snapshot on disk: written atomically (a temporary file beside it, written, fsynced, renamed
// over the old one, the directory fsynced), mode 0600 from its creation since session data are TLS
// secrets, and owned by whoever writes it (dc_server after its privilege drop). Read back whole;
// a file that does not decode is moved aside (FILE.bad-TIMESTAMP) so the server starts empty and
// the next start does not trip on it again: never a crash loop.

import fs from 'node:fs';
import path from 'node:path';
import { decodeSnapshot } from './snapshot_codec';
import type { StoredSession } from '../stores/session_store';

/** Created with this mode: readable by the daemon's user only. */
export const SNAPSHOT_MODE = 0o600;

/** What reading a snapshot found. */
export type SnapshotReadResult =
  | { readonly kind: 'absent' }
  | { readonly kind: 'ok'; readonly writtenAt: number; readonly count: number; readonly sessions: Iterable<StoredSession>; readonly bytes: number }
  /** Did not decode; moved to `movedTo` (undefined when even the move failed: `moveError`). */
  | { readonly kind: 'rejected'; readonly reason: string; readonly movedTo?: string; readonly moveError?: string }
  /** Exists but cannot be read (permissions, I/O): left where it is. */
  | { readonly kind: 'unreadable'; readonly reason: string };

/**
 * Writes a snapshot to `file` atomically with mode 0600: `fill` is called with a function that
 * writes bytes to the new file (each call's bytes are written before it returns, so the caller may
 * reuse its buffer). Synchronous on purpose: the sessions are encoded from the live store while
 * they are written, so nothing may change the store meanwhile. Returns the bytes written.
 */
export function writeSnapshotFile(file: string, fill: (write: (bytes: Buffer) => void) => void): number {
  const temporary = `${file}.tmp-${process.pid}`;
  fs.rmSync(temporary, { force: true });
  const fd = fs.openSync(temporary, 'wx', SNAPSHOT_MODE);
  let bytes = 0;
  try {
    fill((chunk) => {
      // A write may take less than it was given (a signal, a full device): go on from there.
      for (let done = 0; done < chunk.length; ) done += fs.writeSync(fd, chunk, done);
      bytes += chunk.length;
    });
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(temporary, file);
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      // Already closed.
    }
    fs.rmSync(temporary, { force: true });
    throw error;
  }
  syncDirectory(path.dirname(file));
  return bytes;
}

/** Reads and decodes `file`; a file that does not decode is moved aside at once. */
export function readSnapshotFile(file: string, options: { readonly now: Date }): SnapshotReadResult {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'unreadable', reason: code ?? (error as Error).message };
  }
  const decoded = decodeSnapshot(bytes);
  if (decoded.kind === 'ok') return { ...decoded, bytes: bytes.length };
  const movedTo = `${file}.bad-${options.now.toISOString().replace(/[:.]/g, '-')}`;
  try {
    fs.renameSync(file, movedTo);
    return { kind: 'rejected', reason: decoded.reason, movedTo };
  } catch (error) {
    return { kind: 'rejected', reason: decoded.reason, moveError: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

/** Makes the rename durable; a directory that cannot be opened for that (some file systems) is
 * not a reason to fail the snapshot. */
function syncDirectory(directory: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(directory, 'r');
    fs.fsyncSync(fd);
  } catch {
    // EISDIR/EINVAL/EACCES on exotic file systems: the data itself is already synced.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
