// Starts the real dc_server (node dist/src/cli/dc_server.js, never through npm) on 127.0.0.1
// port 0, learns its address from the "listening on=" start-up line, keeps its stderr log lines,
// reads its resident memory from /proc/PID/status, and stops it by PID.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

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
  const child = spawn(cmd!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  const waiters: Array<() => void> = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  let status: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      status = { code, signal };
      for (const w of waiters.splice(0)) w();
      resolve(status);
    }),
  );
  const deadline = Date.now() + 15_000;
  let address: string | undefined;
  while (address === undefined) {
    const m = lines.map((l) => /listening on=(\S+)/.exec(l)).find((x) => x !== null);
    if (m) address = m[1]!.split(',')[0]!;
    else {
      if (status !== undefined || Date.now() > deadline) {
        if (status === undefined) child.kill('SIGKILL');
        throw new Error(`dc_server did not start (${JSON.stringify(status)}):\n${lines.join('\n')}${partial}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  const m = /^(?:tcp:)?(?:\[?([\d.:a-f]+)\]?):(\d+)$/.exec(address);
  const target = m === null ? { host: '127.0.0.1', port: 0 } : { host: m[1]!, port: Number(m[2]) };
  const pid = child.pid!;
  return {
    child,
    pid,
    target,
    lines,
    exited,
    alive: () => status === undefined,
    rssBytes: () => procMemory(pid),
    async stop() {
      if (status === undefined) {
        child.kill('SIGTERM');
        const t = setTimeout(() => status === undefined && child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      return status!;
    },
  };
}
