// Reads one entry of the disk tier (./disk_store): the read on a hit's path. An entry that fits
// SYNC_READ_MAX is read with synchronous calls: on a page-cache file, open, fstat, read and close
// cost about 10 us of CPU together, where the same through the thread pool costs 75-90 us
// (measured here: fs.readFile and fs/promises readFile), and a hit is mostly this read. A larger
// entry (up to --cache-max-entry) is read through the thread pool, so that no single read holds
// up the daemon's other connections for long. The last use is set on the open descriptor
// (futimes) when the caller asks for it.

import { closeSync, constants as C, fstatSync, futimesSync, openSync, readSync } from 'node:fs';
import fs from 'node:fs/promises';

/** Entries up to this size are read with synchronous calls (see above). */
export const SYNC_READ_MAX = 1 << 20;

/** The bytes of `file`; `touch` (seconds since the epoch): set its mtime to that too. Rejects as fs does (ENOENT ...). */
export async function readEntryFile(file: string, touch?: number): Promise<Buffer> {
  const fd = openSync(file, C.O_RDONLY);
  let small: Buffer | undefined;
  try {
    const size = fstatSync(fd).size;
    if (size <= SYNC_READ_MAX) {
      small = Buffer.allocUnsafe(size);
      let at = 0;
      for (let n = -1; at < size && n !== 0; at += n) n = readSync(fd, small, at, size - at, at);
      // Shortened meanwhile (a torn file is not possible: writes are renamed into place): the checksum tells.
      if (at < size) small = small.subarray(0, at);
    }
    if (touch !== undefined) {
      try {
        futimesSync(fd, touch, touch);
      } catch {
        // EROFS, EPERM: the entry is served all the same.
      }
    }
  } finally {
    closeSync(fd);
  }
  return small ?? fs.readFile(file);
}
