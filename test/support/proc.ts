// Processes as /proc shows them, for tests that check nothing outlived what it should: a
// process's state, its parent, its group. Linux only, as the tests that use it are.

import fs from 'node:fs';

/**
 * /proc/PID/stat split into fields, the comm field (index 1) kept whole: it may hold spaces and
 * parentheses, so the fields after it are split from the last ')'. Index 2 is the state, 3 the
 * parent's pid, 4 the process group. Undefined once the process is gone.
 */
export function procStat(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = stat.lastIndexOf(')');
  return [stat.slice(0, stat.indexOf(' ')), stat.slice(stat.indexOf('(') + 1, close), ...stat.slice(close + 2).trim().split(' ')];
}

/** A process that still runs: a zombie counts as dead (it holds nothing but its pid). */
export function isAlive(pid: number): boolean {
  const fields = procStat(pid);
  return fields !== undefined && fields[2] !== 'Z';
}

/** The pids in /proc whose stat fields pass `match` (a process gone while we look is skipped). */
function processesWhere(match: (fields: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fields = procStat(Number(name));
    if (fields !== undefined && match(fields)) out.push(Number(name));
  }
  return out;
}

/** The children of `ppid`, zombies included: a child nobody reaped shows up here. */
export function childrenOf(ppid: number): number[] {
  return processesWhere((fields) => fields[3] === String(ppid));
}

/** The live (not zombie) processes whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  return processesWhere((fields) => fields[4] === String(pgid) && fields[2] !== 'Z');
}
