// The sandbox's start-up check (Sandbox.verify), remembered between the processes of --inetd
// mode. There every connection is a process of its own, and the check (bwrap running `true`, a
// few processes and namespaces) cost each of them 10-15 ms before its job could start, measured:
// more than the whole rest of the sandbox. A process that finds a passed check here, made by
// a process in the same conditions, skips it.
//
// The conditions are the key: bwrap's file (path, device, inode, size, times), the kernel (its
// release and version, and the boot: a sysctl set since applies after a reboot at the latest),
// the user-namespace sysctls, the namespaces this process runs in (by what they hold where a service manager
// makes alike ones per process) and its seccomp and capability state (a service manager's
// RestrictNamespaces=, ProtectKernelTunables=, another unit or container: other mounts, maps or
// filters, so another key), the user the jobs run as,
// whether the daemon's network is loopback only, and the sandbox's own arguments. Only a passed
// check is stored. A file that claims a pass falsely (planted by another process of the same
// user) can only make jobs fail at bwrap's set-up, never run unconfined: the compiler runs in
// bwrap or not at all. The file must be a regular file owned by this user or root and writable
// by no one else, or it is ignored; it is written under a temporary name and renamed into place.
// It lives in a runtime directory (probeCacheDir), never in TMPDIR, which holds jobs' files only.
//
// Exports: probeCacheDir(env), probeKey(bwrap, facts), readProbe(dir, key), writeProbe(dir, key, result)

import { createHash } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, statSync, unlinkSync, writeSync, constants as C } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What the check found: whether jobs get their own /proc and network namespace. */
export interface ProbeResult {
  readonly proc: boolean;
  readonly net: boolean;
}

/** A file's content, or '' when it cannot be read (a sysctl or namespace this kernel lacks). */
function readOr(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

function linkOr(file: string): string {
  try {
    return readlinkSync(file);
  } catch {
    return '';
  }
}

/**
 * The mount table without what differs between alike namespaces: mount and parent ids, device
 * numbers (a new tmpfs or devpts for each PrivateDevices=), the source's root (PrivateTmp='s
 * per-process directory) and peer groups. Left: each mount point with its file system type,
 * source and options (what a masked /proc, ProtectSystem= or a
 * container changes).
 */
function mountsOf(mountinfo: string): string {
  return mountinfo.split('\n').map((line) => {
    const [left = '', right = ''] = line.split(' - ');
    const f = left.split(' ');
    return `${f[4] ?? ''} ${f[5] ?? ''} - ${right}`;
  }).join('\n');
}

/** The key of the check made with `bwrap` for `facts` (the user, the sandbox's arguments...). */
export function probeKey(bwrap: string, facts: readonly string[]): string {
  const st = statSync(bwrap);
  const status = readOr('/proc/self/status').split('\n').filter((line) => /^(Uid|Gid|Cap(Eff|Bnd|Prm)|NoNewPrivs|Seccomp|Seccomp_filters):/.test(line));
  const parts = [
    bwrap, `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`,
    os.release(), os.version(), readOr('/proc/sys/kernel/random/boot_id'),
    readOr('/proc/sys/user/max_user_namespaces'), readOr('/proc/sys/kernel/unprivileged_userns_clone'),
    // The pid and cgroup namespaces by identity; the user and mount namespaces by what they
    // hold, since a service manager makes new ones for every process of a per-connection unit
    // (PrivateUsers=, PrivateMounts=: distccd-accept@.service), alike but never the same. The
    // network counts through the caller's facts (loopback only or not), ipc not at all.
    ...['pid', 'cgroup'].map((ns) => linkOr(`/proc/self/ns/${ns}`)),
    readOr('/proc/self/uid_map'), readOr('/proc/self/gid_map'), readOr('/proc/self/setgroups'), mountsOf(readOr('/proc/self/mountinfo')),
    ...status, ...facts,
  ];
  return createHash('sha256').update(parts.join('\0')).digest('hex');
}

/**
 * Where the check is remembered: the service's RuntimeDirectory= (systemd), /run/distccd for root,
 * the user's XDG_RUNTIME_DIR; undefined (check every time) when there is none.
 */
export function probeCacheDir(env: NodeJS.ProcessEnv): string | undefined {
  const given = env['RUNTIME_DIRECTORY']?.split(':')[0] ?? (process.geteuid?.() === 0 ? '/run/distccd' : env['XDG_RUNTIME_DIR']);
  if (given === undefined || given === '' || !path.isAbsolute(given)) return undefined;
  try {
    mkdirSync(given, { recursive: true, mode: 0o755 });
    return given;
  } catch {
    return undefined;
  }
}

const fileIn = (dir: string): string => path.join(dir, `distkit-sandbox-check-${process.geteuid?.() ?? 'u'}.json`);

/** A passed check stored under `key` in `dir`, or undefined. */
export function readProbe(dir: string, key: string): ProbeResult | undefined {
  const file = fileIn(dir);
  try {
    const st = lstatSync(file);
    const uid = process.geteuid?.();
    if (!st.isFile() || (st.uid !== uid && st.uid !== 0) || (st.mode & 0o022) !== 0) return undefined;
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { key?: unknown; proc?: unknown; net?: unknown };
    if (stored.key !== key || typeof stored.proc !== 'boolean' || typeof stored.net !== 'boolean') return undefined;
    return { proc: stored.proc, net: stored.net };
  } catch {
    return undefined;
  }
}

/** Stores a passed check; a directory that refuses it only means the next process checks again. */
export function writeProbe(dir: string, key: string, result: ProbeResult): void {
  const file = fileIn(dir);
  const temp = `${file}.${process.pid}`;
  try {
    const fd = openSync(temp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, JSON.stringify({ key, proc: result.proc, net: result.net }));
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch {
    try {
      unlinkSync(temp);
    } catch {
      // Never made.
    }
  }
}
