// The real pump-mode distcc client for system tests. Bookworm's distcc-pump never speaks protocol 3
// (its include server fails under Python 3.11 and the client quietly preprocesses locally), so
// ../shared/reference/distcc/build.sh builds upstream distcc (pump, distcc, include server) once
// per machine and source, through real_pump_build.sh: into DISTKIT_TEST_CACHE, else
// /var/cache/distkit-test when root, else $TMPDIR/distkit-test-cache, under
// distcc-pump-<hash of the tarball and build.sh>. The wrapper takes a lock and marks a finished
// build, so test files running in parallel build it once and later runs find it ready.
//
// Exports: realPump() -> { prefix, pump, distcc }, startIncludeServer(t, home) -> { env },
//          runPump(command, options) -> ClientResult, assertPumped(result),
//          serveCDistccd(t) -> { port, log() }

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { clientEnv, run, type ClientResult } from './distccd_harness';

/** distcc's source and build script, in the shared folder beside the checkout (as in CI). */
const REFERENCE = path.resolve(__dirname, '../../../../shared/reference/distcc');
const BUILD_SCRIPT = path.join(REFERENCE, 'build.sh');
const TARBALL = path.join(REFERENCE, 'distcc-f4a7147.tar.gz');
const WRAPPER = path.resolve(__dirname, '../../../test/support/real_pump_build.sh');

export interface RealPump {
  readonly prefix: string;
  /** PREFIX/bin/pump: starts an include server, runs its command, stops the server. */
  readonly pump: string;
  /** PREFIX/bin/distcc: the client that talks to the include server. */
  readonly distcc: string;
}

/** Where built reference programs are kept between test runs (see the header). */
export function cacheDir(): string {
  const configured = process.env['DISTKIT_TEST_CACHE'];
  if (configured !== undefined && configured !== '') return configured;
  return process.getuid?.() === 0 ? '/var/cache/distkit-test' : path.join(os.tmpdir(), 'distkit-test-cache');
}

let building: Promise<RealPump> | undefined;

/** Builds the pump client unless a finished build for this source is cached, and returns its paths. */
export function realPump(): Promise<RealPump> {
  building ??= (async () => {
    const hash = createHash('sha256').update(readFileSync(TARBALL)).update(readFileSync(BUILD_SCRIPT)).digest('hex').slice(0, 16);
    const prefix = path.join(cacheDir(), `distcc-pump-${hash}`);
    const built = await run('bash', [WRAPPER, REFERENCE, prefix], { cwd: REFERENCE, timeoutMs: 600_000 });
    if (built.code !== 0) throw new Error(`building the pump client failed (${built.code}):\n${built.stdout}${built.stderr}`);
    return { prefix, pump: path.join(prefix, 'bin/pump'), distcc: path.join(prefix, 'bin/distcc') };
  })();
  return building;
}

export interface PumpRunOptions {
  readonly cwd: string;
  /** The port of the compile server on 127.0.0.1 (host options ,cpp,lzo: pump mode). */
  readonly port: number;
  /** The client's private HOME and DISTCC_DIR. */
  readonly home: string;
  /** Use this running include server instead of starting one for the command with `pump`. */
  readonly includeServer?: IncludeServer;
  readonly env?: NodeJS.ProcessEnv;
}

export interface IncludeServer {
  /** INCLUDE_SERVER_PORT (its socket), INCLUDE_SERVER_PID and INCLUDE_SERVER_DIR, as `pump --startup` sets them. */
  readonly env: NodeJS.ProcessEnv;
}

/**
 * Starts one include server (`pump --startup`) for many client runs: `pump` alone starts and
 * stops one per command, and stopping takes about two seconds. t.after stops it (`pump --shutdown`).
 */
export async function startIncludeServer(t: { after: (fn: () => Promise<unknown>) => void }, home: string): Promise<IncludeServer> {
  const { pump } = await realPump();
  const env = clientEnv(home, '127.0.0.1:1/1,cpp,lzo');
  const started = await run(pump, ['--startup'], { cwd: home, env });
  assert.equal(started.code, 0, started.stderr);
  const vars: NodeJS.ProcessEnv = {};
  for (const [, name, value] of started.stdout.matchAll(/^export (INCLUDE_SERVER_\w+)='([^']*)'$/gm)) vars[name!] = value;
  assert.ok(vars['INCLUDE_SERVER_PORT'] !== undefined && vars['INCLUDE_SERVER_PID'] !== undefined, started.stdout);
  t.after(() => run(pump, ['--shutdown'], { cwd: '/', env: { ...env, ...vars } })); // home may be gone by then
  return { env: vars };
}

/**
 * Runs `pump <command...>`, or the command alone with a running include server, with only the
 * given server as a pump host. DISTCC_TESTING_INCLUDE_SERVER makes the client fail instead of
 * preprocessing locally when the include server gives up, so a job that did not go over
 * protocol 3 cannot pass for one.
 */
export async function runPump(command: readonly string[], options: PumpRunOptions): Promise<ClientResult> {
  const { pump } = await realPump();
  const env = clientEnv(options.home, `127.0.0.1:${options.port}/4,cpp,lzo`, { DISTCC_TESTING_INCLUDE_SERVER: '1', ...options.includeServer?.env, ...options.env });
  const [file, ...args] = options.includeServer === undefined ? [pump, ...command] : command;
  return run(file!, args, { cwd: options.cwd, env, timeoutMs: 120_000 });
}

/** The client exited 0 and said nothing about falling back to local preprocessing or compiling. */
export function assertPumped(result: ClientResult): void {
  const said = `${result.stdout}${result.stderr}`;
  assert.equal(result.code, 0, said);
  assert.doesNotMatch(said, /preprocessing locally|gave up analyzing|failed to distribute|running locally|Preprocessing locally/, said);
}

/**
 * Debian's C distccd (/usr/bin/distccd), the reference, serving each connection to a port-0
 * listener as inetd nowait would: one `distccd --inetd` per connection on fd 0 and 1, its debug
 * log collected from stderr. The listener and every child are ended by the test's t.after.
 */
export async function serveCDistccd(t: { after: (fn: () => Promise<unknown>) => void }): Promise<{ port: number; log: () => string }> {
  let log = '';
  const children = new Set<ReturnType<typeof spawn>>();
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const child = spawn('/usr/bin/distccd', ['--inetd', '--log-stderr', '--log-level', 'debug'], { stdio: [socket, socket, 'pipe'] });
    socket.destroy(); // the child holds its own copies, as after inetd's fork
    children.add(child);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    child.once('exit', () => children.delete(child));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...children].map((c) => new Promise((resolve) => { c.once('exit', resolve); c.kill('SIGTERM'); })));
  });
  return { port: (server.address() as net.AddressInfo).port, log: () => log };
}
