// What the stats page reports about the machine itself, read from Linux /proc and statfs the way
// distcc's src/util.c and src/stats.c do: load averages, processes running now, processes in
// state D, the largest resident process that is not a compiler, disk sectors per second, free
// space in TMPDIR and available memory. Every reading degrades to -1 (as the C server prints)
// when its source is missing, so the page is always complete.
//
// Exports:
//   HostReadings                  the values one page shows
//   createHostReader(options)     -> () => Promise<HostReadings>; keeps the previous disk counter
//                                    to turn it into a rate (first reading: -1, like distccd)
// Options take the /proc root and the temp dir as parameters (tests point them elsewhere).

import fs from 'node:fs/promises';
import path from 'node:path';

export interface HostReadings {
  readonly loadavg: readonly [number, number, number];
  /** Runnable processes now (/proc/loadavg 4th field, before the '/'). */
  readonly currentLoad: number;
  readonly procstateD: number;
  /** KB; the largest RSS among processes whose name does not end in "cc" or "++". */
  readonly maxRss: number;
  /** Process name as /proc/PID/stat prints it, with its parentheses: "(node)". */
  readonly maxRssName: string;
  /** Sectors read+written per second on whole disks since the previous reading; -1 at first. */
  readonly ioRate: number;
  /** MB available to unprivileged users in the temp dir's file system. */
  readonly freeSpaceMb: number;
  /** MB of MemAvailable. */
  readonly freeMemMb: number;
}

export interface HostReaderOptions {
  /** Where /proc is (default "/proc"). */
  readonly procRoot?: string;
  /** The directory jobs write their temp files in (TMPDIR; default /tmp). */
  readonly tmpDir?: string;
  /** Milliseconds clock (default Date.now), for the I/O rate. */
  readonly now?: () => number;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function parseLoadavg(text: string | undefined): { loadavg: [number, number, number]; running: number } {
  const m = text === undefined ? null : /^(\S+) (\S+) (\S+) (\d+)\/\d+/.exec(text);
  if (m === null) return { loadavg: [-1, -1, -1], running: -1 };
  return { loadavg: [Number(m[1]), Number(m[2]), Number(m[3])], running: Number(m[4]) };
}

/** Fields of /proc/PID/stat: the name is in parentheses and may hold spaces and ')'. */
export function parseProcStat(text: string, pageKb: number): { name: string; state: string; rssKb: number } | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).split(' ');
  const rssPages = Number(rest[21]);
  if (rest[0] === undefined || !Number.isFinite(rssPages)) return undefined;
  return { name: text.slice(open, close + 1), state: rest[0], rssKb: rssPages * pageKb };
}

/** Whole disks only (sda, hda, vda, xvda, nvme0n1, mmcblk0), so partitions are not counted twice. */
export function parseDiskSectors(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  let total = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const dev = f[2]!;
    if (!/^(?:[shv]d[a-z]+|xvd[a-z]+|nvme\d+n\d+|mmcblk\d+)$/.test(dev)) continue;
    total += Number(f[5]) + Number(f[9]);
  }
  return total;
}

export function parseMemAvailableMb(text: string | undefined): number {
  const m = text === undefined ? null : /^MemAvailable:\s+(\d+) kB/m.exec(text);
  return m === null ? -1 : Math.floor(Number(m[1]) / 1024);
}

export function createHostReader(options: HostReaderOptions = {}): () => Promise<HostReadings> {
  const proc = options.procRoot ?? '/proc';
  const tmpDir = options.tmpDir ?? '/tmp';
  const now = options.now ?? Date.now;
  const pageKb = 4; // x86-64 and arm64 Linux both use 4 KiB pages for RSS accounting
  let previous: { sectors: number; at: number } | undefined;
  let lastIoRate = -1;

  async function scanProcesses(): Promise<{ d: number; rss: number; name: string }> {
    let d = 0;
    let rss = 0;
    let name = '';
    let entries: string[];
    try {
      entries = await fs.readdir(proc);
    } catch {
      return { d: -1, rss: -1, name: 'none' };
    }
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      const text = await readText(path.join(proc, entry, 'stat'));
      if (text === undefined) continue;
      const stat = parseProcStat(text, pageKb);
      if (stat === undefined) continue;
      if (stat.state === 'D') d++;
      const bare = stat.name.slice(1, -1);
      if (stat.rssKb > rss && !bare.endsWith('cc') && !bare.endsWith('++')) {
        rss = stat.rssKb;
        name = stat.name;
      }
    }
    return { d, rss, name };
  }

  return async function readHost(): Promise<HostReadings> {
    const [loadText, diskText, memText, procs] = await Promise.all([
      readText(path.join(proc, 'loadavg')),
      readText(path.join(proc, 'diskstats')),
      readText(path.join(proc, 'meminfo')),
      scanProcesses(),
    ]);
    const { loadavg, running } = parseLoadavg(loadText);
    const sectors = parseDiskSectors(diskText);
    const at = now();
    if (sectors !== undefined) {
      // Like distccd, a rate needs two counter readings; between them the last rate stands.
      if (previous === undefined) {
        previous = { sectors, at };
      } else if (at - previous.at >= 1000) {
        lastIoRate = Math.max(0, Math.floor((sectors - previous.sectors) / ((at - previous.at) / 1000)));
        previous = { sectors, at };
      }
    }
    const ioRate = lastIoRate;
    let freeSpaceMb = -1;
    try {
      const s = await fs.statfs(tmpDir);
      freeSpaceMb = Math.floor((s.bavail * s.bsize) / (1024 * 1024));
    } catch {
      // stays -1, as distccd prints when statvfs fails
    }
    return {
      loadavg, currentLoad: running, procstateD: procs.d, maxRss: procs.rss, maxRssName: procs.name,
      ioRate, freeSpaceMb, freeMemMb: parseMemAvailableMb(memText),
    };
  };
}
