// Process credentials and limits: drop root for a named user (supplementary groups first, then
// the gid, then the uid: the other order leaves root's groups or fails once uid is gone), lower
// the priority (--nice), and raise RLIMIT_NOFILE so queued connections do not hit EMFILE.
// Names go through the `posix` package's getpwnam/getgrnam (the system's NSS).

import os from 'node:os';
import * as posix from 'posix';
import { DistkitError } from '../errors';

export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/**
 * Accounts found, by the name or uid asked: a process asks for the same one several times (the
 * sandbox's check, the object cache's owner, the privilege drop), and each lookup read the
 * password database again through NSS, ~0.1-0.4 ms cold in an --inetd process, measured; more
 * with NSS modules such as systemd's userdb. Only found accounts are kept: a missing one is
 * asked again.
 */
const accounts = new Map<string, Account>();

/** Resolves a user name or numeric uid. */
export function resolveUser(user: string): Account {
  const known = accounts.get(user);
  if (known !== undefined) return known;
  try {
    const pw = posix.getpwnam(/^\d+$/.test(user) ? Number(user) : user);
    const account = Object.freeze({ name: pw.name, uid: pw.uid, gid: pw.gid });
    accounts.set(user, account);
    return account;
  } catch (error) {
    throw new DistkitError('unknown-user', `Unknown user "${user}": create it or name an existing user`, { cause: error });
  }
}

/** Resolves a group name or numeric gid. */
export function resolveGroup(group: string): number {
  try {
    return posix.getgrnam(/^\d+$/.test(group) ? Number(group) : group).gid;
  } catch (error) {
    throw new DistkitError('unknown-group', `Unknown group "${group}": create it or name an existing group`, { cause: error });
  }
}

/**
 * Becomes `user` for good: initgroups (or, with groups 'none', no supplementary group at all),
 * setgid, setuid, then checks root cannot be regained. Not running as root is fine only when we
 * already are that user (nothing changes then).
 */
export function dropPrivileges(user: string, options: { groups?: 'member' | 'none' } = {}): Account {
  const account = resolveUser(user);
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) {
    if (uid === account.uid) return account;
    throw new DistkitError('not-root', `Cannot become user "${user}": only root can switch users (running as uid ${uid})`);
  }
  try {
    if (options.groups === 'none') process.setgroups!([]);
    else posix.initgroups(account.name, account.gid);
    process.setgid!(account.gid);
    process.setuid!(account.uid);
  } catch (error) {
    throw new DistkitError('drop-privileges', `Cannot become user "${user}": ${(error as Error).message}`, { cause: error });
  }
  if (account.uid !== 0) {
    let regained = false;
    try {
      process.setuid!(0);
      regained = true;
    } catch {
      // Expected: the drop is permanent.
    }
    if (regained) throw new DistkitError('drop-privileges', `Dropping to user "${user}" did not stick: root came back`);
  }
  return account;
}

/** Adds `increment` to the process niceness (distccd --nice), clamped to the 19 maximum. */
export function addNiceness(increment: number): number {
  const target = Math.max(-20, Math.min(19, os.getPriority() + increment));
  os.setPriority(target);
  return target;
}

/** Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit. */
export function raiseFileLimit(): number | null {
  const { soft, hard } = posix.getrlimit('nofile');
  if (hard !== null && soft !== null && soft < hard) {
    posix.setrlimit('nofile', { soft: hard });
    return hard;
  }
  return soft;
}
