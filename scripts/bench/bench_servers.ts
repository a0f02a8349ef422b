// What every bench does with the servers it starts: wait until one listens, stop one by its PID
// (SIGTERM, then SIGKILL after 5 s), whatever program it is, and stop them all on Ctrl-C.

import fs from 'node:fs/promises';
import net from 'node:net';
import type { ChildProcess } from 'node:child_process';

/** Resolves once 127.0.0.1:`port` accepts; rejects when `child` exits first or after `ms`. */
export async function waitForPort(port: number, child: ChildProcess, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

/** SIGTERM, then SIGKILL if it has not exited after 5 s; resolves when it has exited. */
export async function stopServer(s: { readonly child: ChildProcess }): Promise<void> {
  if (s.child.exitCode !== null || s.child.pid === undefined) return;
  const gone = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

/** On SIGINT or SIGTERM: stops every server in `servers` (as it stands then, by PID; C distccd
 * leaves our process group, so the terminal's signal does not reach it), runs `release` (cgroups),
 * removes `work`, and exits 130 or 143. */
export function stopServersOnSignal(servers: readonly { readonly child: ChildProcess }[], work: string, release: () => Promise<void> | void = () => undefined): void {
  const abort = (signal: NodeJS.Signals): void => {
    void Promise.all(servers.map(stopServer))
      .then(release)
      .finally(() => fs.rm(work, { recursive: true, force: true }))
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
}
