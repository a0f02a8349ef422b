// Where a pump (protocol 3) job's tree stands inside the sandbox: at the client's own absolute
// paths. The tree was rebuilt under <root> (pump/tree.ts, which refused every path leaving it);
// here each of its top-level entries is bound at the path the client named, so `#include
// "/home/u/p/x.h"` opens the client's copy, the server's file of that name does not exist in the
// sandbox, and debug info and .d files carry the client's paths as a local compile would, with
// nothing to rewrite.
//
// An entry meets the sandbox's own mounts when the client's path runs through them (a project in
// /tmp, headers under /usr): it is then bound one level further down, child by child, until the
// paths are free (under /tmp, the tmpfs takes any mount point) or name a file the server has
// inside a read-only compiler directory (bound over it: the client's copy wins, as it should;
// a directory the server has there too is entered, never covered).
// A client path that can stand nowhere (a new name inside /usr, one of the job's own files) is
// refused with its name. The include server's "system mirror" links (/usr/include -> the
// server's own) are left out: the compiler directories already show the server's copy there.
// The tree also stays visible at <root> itself, so its absolute links (stored as <root>/target)
// resolve inside the sandbox too.
//
// Exports: treeBinds(root, { occupied, writableParents }) -> Promise<Bind[]>

import fs from 'node:fs/promises';
import path from 'node:path';
import { DistkitError } from '../../errors';
import type { Bind } from './sandbox';

interface Placement {
  /** Paths the sandbox mounts itself (compiler directories, /proc, /dev, /tmp, the job's files). */
  readonly occupied: readonly string[];
  /** Of those, the ones that take new mount points (tmpfs): /tmp. */
  readonly writableParents: readonly string[];
}

const isUnder = (p: string, dir: string): boolean => p.startsWith(dir === '/' ? '/' : `${dir}/`);

/** The include server's link from a system include directory to the server's own (see pump/tree.ts). */
function isMirror(target: string, clientPath: string): boolean {
  const m = /^((?:\.\.\/)+)(.*)$/.exec(target);
  return m !== null && path.posix.normalize(`/${m[2]!}`) === clientPath;
}

function refused(message: string): DistkitError {
  return new DistkitError('unsafe-path', message);
}

/** The binds that place the tree at `root` on the client's paths, plus <root> itself. */
export async function treeBinds(root: string, placement: Placement): Promise<Bind[]> {
  const binds: Bind[] = [{ from: root, to: root }];
  const place = async (clientPath: string): Promise<void> => {
    const from = root + clientPath;
    const st = await fs.lstat(from);
    const link = st.isSymbolicLink() ? await fs.readlink(from) : undefined;
    if (link !== undefined && isMirror(link, clientPath)) return;
    const exact = placement.occupied.includes(clientPath);
    const above = placement.occupied.some((o) => isUnder(o, clientPath));
    const inside = placement.occupied.find((o) => isUnder(clientPath, o));
    const readOnly = inside !== undefined && !placement.writableParents.some((w) => isUnder(clientPath, w));
    // Inside a read-only compiler directory no new name can be made: a directory the server has
    // too is entered (binding over it would hide the compiler's files), a file covers the server's.
    const server = readOnly ? await fs.lstat(clientPath).catch(() => undefined) : undefined;
    if (exact || above || server?.isDirectory() === true) {
      if (!st.isDirectory()) throw refused(`the client's ${clientPath} is a path the sandbox uses itself`);
      for (const child of (await fs.readdir(from)).sort()) await place(path.posix.join(clientPath, child));
      return;
    }
    if (readOnly && (server === undefined || st.isDirectory() || server.isSymbolicLink() !== (link !== undefined))) {
      throw refused(`the client's ${clientPath} cannot stand inside the server's read-only ${inside}`);
    }
    // A link is made again rather than bound: a bind would follow it (and fail on a dangling one).
    binds.push(link === undefined ? { from, to: clientPath } : { from: link, to: clientPath, symlink: true });
  };
  for (const top of (await fs.readdir(root)).sort()) await place(`/${top}`);
  return binds;
}
