// Starts the real dc_server (node dist/src/cli/dc_server.js, never through npm) on 127.0.0.1
// port 0 as a Daemon (test/support/daemon.ts), learns its address from the "listening on="
// start-up line, keeps its stderr log lines, reads its resident memory from /proc/PID/status, and
// stops it by PID.

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Daemon } from '../support/daemon';

export const DC_SERVER = path.join(__dirname, '..', '..', 'src', 'cli', 'dc_server.js');
/** The engine behind the activation layer without dc_server's CLI (args: sessions). */
export const ENGINE_SERVER = path.join(__dirname, '..', 'load', 'engine_server_main.js');

export function haveServerProgram(): boolean {
  return fs.existsSync(DC_SERVER);
}

/** VmRSS (or VmHWM: the peak) of a process, bytes; 0 once it is gone. */
export function procMemory(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

export interface ServerProgram {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly target: { readonly host: string; readonly port: number };
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  rssBytes(): number;
  /** SIGTERM by PID (SIGKILL after 10 s); resolves with how it ended. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  /** Listen address (default IP:127.0.0.1:0). */
  readonly listen?: string;
  /** Wrap the command (e.g. ['prlimit', '--nofile=64', '--']). */
  readonly wrapper?: readonly string[];
  /** Run this script instead of dc_server (no -listen is added): ENGINE_SERVER. */
  readonly script?: string;
}

export async function startServerProgram(args: readonly string[], options: StartOptions = {}): Promise<ServerProgram> {
  if (options.script === undefined && !haveServerProgram()) throw new Error(`${DC_SERVER} is missing (dc_server not merged yet?)`);
  const argv =
    options.script === undefined
      ? [process.execPath, DC_SERVER, '-listen', options.listen ?? 'IP:127.0.0.1:0', ...args]
      : [process.execPath, options.script, ...args];
  const [cmd, ...rest] = [...(options.wrapper ?? []), ...argv];
  const daemon = new Daemon(cmd!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
  let address: string;
  try {
    address = (await daemon.listening(15_000))[0]!;
  } catch (error) {
    daemon.child.kill('SIGKILL');
    throw new Error(`dc_server did not start: ${(error as Error).message}`);
  }
  const m = /^(?:tcp:)?(?:\[?([\d.:a-f]+)\]?):(\d+)$/.exec(address);
  const target = m === null ? { host: '127.0.0.1', port: 0 } : { host: m[1]!, port: Number(m[2]) };
  const pid = daemon.pid;
  return {
    child: daemon.child,
    pid,
    target,
    lines: daemon.lines,
    exited: daemon.exited,
    alive: () => daemon.exit === undefined,
    rssBytes: () => procMemory(pid),
    stop: () => daemon.stop(),
  };
}
