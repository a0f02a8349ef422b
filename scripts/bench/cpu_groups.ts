// CPU time of process trees for the benchmarks, from the kernel's own accounting: each tree runs
// in a cgroup of its own (cgroup v1 cpuacct.usage, or cgroup v2 cpu.stat usage_usec), so a
// server's figure includes every compiler it ran, and a C distccd's every preforked child.
// Wall time on a VM moves by tens of percent from one minute to the next; the CPU a job costs
// moves far less, and on a machine whose cores are all busy (make -j4 on 2 cores) it is what
// decides the wall time. Needs root; without a writable cgroup hierarchy `open` returns
// undefined and the benchmark says the figure was not measured.
//
// Each group is also a scheduling group (cgroup v1 `cpu`, when it is a hierarchy of its own), so
// every tree competes for the CPUs as one, at the same weight. Without it the kernel's autogroup
// (sched_autogroup_enabled) schedules by session: C distccd's compilers share its session, ours
// are spawned with setsid and each is a session of its own, so on a machine with other load ours
// got several shares to C's one and C's make ran 1.5-3x slower for no fault of its own. Autogroup
// applies to tasks in the root cpu group only: inside a group of ours, both sides are alike.

import fs from 'node:fs';
import path from 'node:path';

interface Hierarchy {
  readonly root: string;
  /** A separate cgroup v1 `cpu` hierarchy, where a group is scheduled as one (undefined: none, or the same as root). */
  readonly scheduler?: string;
  /** Nanoseconds of CPU used by everything in `dir` so far. */
  usage(dir: string): number;
}

function findHierarchy(): Hierarchy | undefined {
  const v1 = '/sys/fs/cgroup/cpuacct';
  if (fs.existsSync(path.join(v1, 'cpuacct.usage'))) {
    const cpu = '/sys/fs/cgroup/cpu';
    const scheduler = fs.existsSync(path.join(cpu, 'cpu.shares')) && !fs.existsSync(path.join(cpu, 'cpuacct.usage')) ? cpu : undefined;
    return { root: v1, scheduler, usage: (dir) => Number(fs.readFileSync(path.join(dir, 'cpuacct.usage'), 'latin1').trim()) };
  }
  for (const v2 of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    if (!fs.existsSync(path.join(v2, 'cgroup.procs')) || !fs.existsSync(path.join(v2, 'cgroup.threads'))) continue;
    return {
      root: v2,
      usage: (dir) => {
        const m = /^usage_usec (\d+)$/m.exec(fs.readFileSync(path.join(dir, 'cpu.stat'), 'latin1'));
        if (m === null) throw new Error(`${dir}/cpu.stat has no usage_usec`);
        return Number(m[1]) * 1000;
      },
    };
  }
  return undefined;
}

export class CpuGroups {
  readonly #hierarchy: Hierarchy;
  readonly #dirs = new Map<string, string>();
  /** The scheduling group of each name, when it is not the accounting group itself. */
  readonly #schedulerDirs = new Map<string, string>();

  private constructor(hierarchy: Hierarchy) {
    this.#hierarchy = hierarchy;
  }

  /** Makes one group per name (distkit-bench-PID-NAME), or undefined when that is not possible. */
  static open(names: readonly string[]): CpuGroups | undefined {
    const hierarchy = findHierarchy();
    if (hierarchy === undefined) return undefined;
    const groups = new CpuGroups(hierarchy);
    try {
      for (const name of names) {
        const dir = path.join(hierarchy.root, `distkit-bench-${process.pid}-${name}`);
        fs.mkdirSync(dir);
        groups.#dirs.set(name, dir);
        hierarchy.usage(dir);
        if (hierarchy.scheduler !== undefined) {
          const sched = path.join(hierarchy.scheduler, `distkit-bench-${process.pid}-${name}`);
          fs.mkdirSync(sched);
          groups.#schedulerDirs.set(name, sched);
        }
      }
    } catch {
      groups.close();
      return undefined;
    }
    return groups;
  }

  /**
   * `[file, args]` that runs `file args` inside group `name`: a shell joins the group, then execs,
   * so every process the program starts, from its first fork on, is counted (and scheduled with it).
   */
  wrap(name: string, file: string, args: readonly string[]): [string, string[]] {
    const procs = path.join(this.#dir(name), 'cgroup.procs');
    const sched = this.#schedulerDirs.get(name);
    if (sched === undefined) return ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', procs, file, ...args]];
    return ['/bin/sh', ['-c', 'echo $$ > "$0" && echo $$ > "$1" && shift && exec "$@"', procs, path.join(sched, 'cgroup.procs'), file, ...args]];
  }

  /** Moves the running process `pid` (every thread) into group `name` for accounting only: its
   * scheduling stays as it was (a bench that pins and schedules its processes its own way). */
  account(name: string, pid: number): void {
    fs.writeFileSync(path.join(this.#dir(name), 'cgroup.procs'), String(pid));
  }

  /** True when each group is also scheduled as one (see the top of this file). */
  get scheduled(): boolean {
    return this.#schedulerDirs.size > 0;
  }

  /** ms of CPU used in group `name` so far. */
  usedMs(name: string): number {
    return this.#hierarchy.usage(this.#dir(name)) / 1e6;
  }

  /** Removes the groups; each must be empty by then (every process in it has exited). */
  close(): void {
    for (const dir of [...this.#dirs.values(), ...this.#schedulerDirs.values()]) {
      // A process that has just exited may still be leaving the group (EBUSY): retry for 2 s.
      for (let attempt = 0; ; attempt++) {
        try {
          fs.rmdirSync(dir);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || attempt >= 40) {
            console.error(`could not remove ${dir}: ${(error as Error).message}`);
            break;
          }
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
        }
      }
    }
    this.#dirs.clear();
    this.#schedulerDirs.clear();
  }

  #dir(name: string): string {
    const dir = this.#dirs.get(name);
    if (dir === undefined) throw new RangeError(`no CPU group named ${name}`);
    return dir;
  }
}
