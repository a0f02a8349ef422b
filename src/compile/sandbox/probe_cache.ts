// The sandbox's start-up check (Sandbox.verify), remembered between the processes of --inetd
// mode. There every connection is a process of its own, and the check (bwrap running `true`, a
// few processes and namespaces) cost each of them 10-15 ms before its job could start, measured:
// more than the whole rest of the sandbox. A process that finds a passed check here, made by
// a process in the same conditions, skips it.
//
// The conditions are the key: bwrap's file (path, device, inode, size, times), the kernel (the
// boot, which a new release or version needs, and a sysctl set since applies after at the latest),
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
// Beside it, under the same key, the compilers' mounts (compiler_mounts.ts) found by earlier
// processes: without them each --inetd process read / and realpath'd its compiler again (~2.5
// ms of CPU a job, measured), and one whose compiler lives outside /usr ran the driver's dozen
// probes (200-300 ms). Each finding carries its evidence (the identities of what it looked at)
// and is used only while that still holds. They are found by the serving user, after a root
// start has dropped privileges, so they live in a directory of that user's
// (distkit-sandbox-mounts-<uid>, made and handed over at the check by a root start). A finding
// names what jobs see, so it is trusted as the check is and no further: a regular file in a
// directory of this user (or root), both writable by no one else, in a runtime directory no
// job can reach (jobs see only their own files and the compiler's directories).
//
// Exports: probeCacheDir(env), probeKey(bwrap, facts), readProbe(dir, key), writeProbe(dir, key, result),
//          mountsMemory(dir, key, owner)

import * as native from 'distkit-spawn';
import { closeSync, lchownSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, constants as C } from 'node:fs';
import path from 'node:path';
import type { CompilerMounts, Evidence, Found, MountsMemory } from './compiler_mounts';

/** What the check found: whether jobs get their own /proc and network namespace, and run in the host program's one-shot mode. */
export interface ProbeResult {
  readonly proc: boolean;
  readonly net: boolean;
  readonly oneShot?: boolean;
}

/**
 * The key of the check made with `bwrap` for `facts` (the user, the sandbox's arguments...): the
 * conditions' text itself, compared whole, built in one call into the addon (probe_check.c
 * checkKey): bwrap's identity; the boot, which stands for the kernel (another release or build
 * runs only after a boot, kexec included, which makes another boot_id); the user-namespace
 * sysctls; the pid and cgroup namespaces by identity; the user and mount namespaces by what they
 * hold (their maps, setgroups, the mount table without ids, device numbers, roots and peer
 * groups), since a service manager makes new ones for every process of a per-connection unit
 * (PrivateUsers=, PrivateMounts=: distccd-accept@.service), alike but never the same; the
 * credential, capability and seccomp lines of /proc/self/status. The network counts through the
 * caller's facts (loopback only or not), ipc not at all. Built in JavaScript, with the stored
 * check read through fs and JSON, this cost a fresh --inetd process ~1.2 ms of CPU, measured:
 * code that runs once a process (regexps, splits, fs) never gets warm. Not a digest either:
 * crypto's first use cost ~1 ms more.
 */
export function probeKey(bwrap: string, facts: readonly string[]): string {
  return native.checkKey(bwrap, facts.join('\0'));
}

/**
 * Where the check is remembered: the service's RuntimeDirectory= (systemd), /run/distccd for root,
 * the user's XDG_RUNTIME_DIR; undefined (check every time) when there is none.
 */
export function probeCacheDir(env: NodeJS.ProcessEnv): string | undefined {
  const given = env['RUNTIME_DIRECTORY']?.split(':')[0] ?? (process.geteuid?.() === 0 ? '/run/distccd' : env['XDG_RUNTIME_DIR']);
  if (given === undefined || given === '' || !path.isAbsolute(given)) return undefined;
  // Looked at before it is made: a recursive mkdir of a directory that is there already cost a
  // fresh --inetd process ~0.4 ms, measured (it walks up from EEXIST).
  try {
    if (statSync(given, { throwIfNoEntry: false })?.isDirectory() === true) return given;
    mkdirSync(given, { recursive: true, mode: 0o755 });
    return given;
  } catch {
    return undefined;
  }
}

const fileIn = (dir: string): string => path.join(dir, `distkit-sandbox-check-${process.geteuid?.() ?? 'u'}`);

/** A stored check's first line, before its flags (probe_check.c recallCheck reads it). */
const HEADER = 'distkit-sandbox-check 1 ';
const PROC = 1;
const NET = 2;
const ONE_SHOT = 4;

/**
 * A passed check stored under `key` in `dir`, or undefined: none, or a file that is a link, not
 * regular, owned by another user than this one or root, or writable by others (probe_check.c).
 */
export function readProbe(dir: string, key: string): ProbeResult | undefined {
  const flags = native.recallCheck(fileIn(dir), key);
  if (flags < 0) return undefined;
  return { proc: (flags & PROC) !== 0, net: (flags & NET) !== 0, ...((flags & ONE_SHOT) !== 0 ? { oneShot: true } : {}) };
}

/** Writes `bytes` to `file` whole or not at all (a temporary name renamed into place); false when refused. */
function replaceFile(file: string, bytes: Buffer): boolean {
  const temp = `${file}.${process.pid}`;
  try {
    const fd = openSync(temp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
    return true;
  } catch {
    try {
      unlinkSync(temp);
    } catch {
      // Never made.
    }
    return false;
  }
}

/** Stores a passed check; a directory that refuses it only means the next process checks again. */
export function writeProbe(dir: string, key: string, result: ProbeResult): void {
  const flags = (result.proc ? PROC : 0) | (result.net ? NET : 0) | (result.oneShot === true ? ONE_SHOT : 0);
  // The key's bytes as checkKey made them (latin1), compared byte for byte by recallCheck.
  replaceFile(fileIn(dir), Buffer.from(`${HEADER}${flags}\n${key}`, 'latin1'));
}

/** Whether `p` is a `kind` owned by this user or root, writable by no one else (never a link). */
function ownTrusted(p: string, kind: 'file' | 'dir'): boolean {
  try {
    const st = lstatSync(p);
    const uid = process.geteuid?.();
    return (kind === 'file' ? st.isFile() : st.isDirectory()) && (st.uid === uid || st.uid === 0) && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** The most findings kept: one per compiler name, PATH and steering variables a client used. */
const MAX_FOUND = 32;

const isString = (x: unknown): x is string => typeof x === 'string';
const isAbsolute = (x: unknown): x is string => isString(x) && path.isAbsolute(x);
const isPair = (x: unknown): x is [string, string] => Array.isArray(x) && x.length === 2 && x.every(isString);

/** A stored finding checked for shape, or undefined. */
function foundOf(x: unknown): Found | undefined {
  const f = x as { program?: unknown; dirs?: unknown; links?: unknown; evidence?: unknown } | null;
  if (f === null || typeof f !== 'object' || !isAbsolute(f.program) || !Array.isArray(f.dirs) || !f.dirs.every(isAbsolute)
    || !Array.isArray(f.links) || !f.links.every((l) => isPair(l) && isAbsolute(l[0])) || !Array.isArray(f.evidence) || !f.evidence.every(isPair)) return undefined;
  const mounts: CompilerMounts = { program: f.program, dirs: f.dirs, links: f.links };
  return { mounts, evidence: f.evidence as Evidence };
}

/**
 * The findings remembered under `key` in `dir`, in the serving user's directory there: `owner`
 * when a root start will drop to it (the directory is made now, while root may, and handed to
 * it), else this user. Undefined when there is no such directory to be had.
 */
export function mountsMemory(dir: string, key: string, owner?: { readonly uid: number; readonly gid: number }): MountsMemory | undefined {
  const sub = path.join(dir, `distkit-sandbox-mounts-${owner?.uid ?? process.geteuid?.() ?? 'u'}`);
  try {
    // Looked at first: a mkdir that throws EEXIST, as it does in all but the first process, cost
    // a fresh --inetd process ~0.2 ms, measured (the error's stack).
    if (lstatSync(sub, { throwIfNoEntry: false }) === undefined) mkdirSync(sub, { mode: 0o755 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
  }
  try {
    // Root made it (now, or in a start that could not hand it over): the serving user's from now on
    // (lchown: a link put in its place meanwhile is changed itself, never what it points to).
    if (owner !== undefined && owner.uid !== process.geteuid?.() && lstatSync(sub).isDirectory() && lstatSync(sub).uid === 0) lchownSync(sub, owner.uid, owner.gid);
  } catch {
    return undefined;
  }
  const file = path.join(sub, 'mounts.json');
  let found: Map<string, Found> | undefined;
  const load = (): Map<string, Found> => {
    found = new Map();
    if (!ownTrusted(sub, 'dir') || !ownTrusted(file, 'file')) return found;
    try {
      const stored = JSON.parse(readFileSync(file, 'utf8')) as { key?: unknown; found?: unknown };
      if (stored.key !== key || stored.found === null || typeof stored.found !== 'object') return found;
      for (const [id, value] of Object.entries(stored.found)) {
        const one = foundOf(value);
        if (one !== undefined) found.set(id, one);
      }
    } catch {
      // Unreadable or not JSON: nothing remembered.
    }
    return found;
  };
  return {
    recall: (id) => (found ?? load()).get(id),
    remember: (id, one) => {
      const all = found ?? load();
      all.delete(id);
      all.set(id, one);
      for (const old of all.keys()) if (all.size > MAX_FOUND) all.delete(old);
      if (!ownTrusted(sub, 'dir')) return;
      const out: Record<string, unknown> = {};
      for (const [name, { mounts, evidence }] of all) out[name] = { ...mounts, evidence };
      replaceFile(file, Buffer.from(JSON.stringify({ key, found: out })));
    },
  };
}
