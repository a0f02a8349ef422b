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

/** Writes `chunks` to `file` atomically with mode 0600; resolves with the bytes written. */
export async function writeSnapshotFile(file: string, chunks: readonly Buffer[]): Promise<number> {
  const temporary = `${file}.tmp-${process.pid}`;
  await fs.promises.rm(temporary, { force: true });
  const handle = await fs.promises.open(temporary, 'wx', SNAPSHOT_MODE);
  let bytes = 0;
  try {
    for (const chunk of chunks) {
      // A write may take less than it was given (a signal, a full pipe): go on from there.
      for (let done = 0; done < chunk.length; ) done += (await handle.write(chunk, done)).bytesWritten;
      bytes += chunk.length;
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.promises.rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fs.promises.rename(temporary, file);
  } catch (error) {
    await fs.promises.rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(path.dirname(file));
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
async function syncDirectory(directory: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(directory, 'r');
    await handle.sync();
  } catch {
    // EISDIR/EINVAL/EACCES on exotic file systems: the data itself is already synced.
  } finally {
    await handle?.close();
  }
}
