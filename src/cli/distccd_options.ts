// distccd's command line (distcc src/daemon.c, src/dopt.c), GNU style, parsed into one frozen
// DistccdConfig. Every option of the C server is here, plus --compiler-dir (our private
// masquerade directory). Bad arguments throw UsageError('bad-arguments') with EXIT.BAD_ARGUMENTS
// (101), as distccd does.

import minimist from 'minimist';
import os from 'node:os';
import { EXIT, UsageError } from '../errors';
import { parseLevel, type Level } from '../log/logger';
import { DEFAULT_MASQUERADE_DIR } from '../compile/allowlist';
import { CACHE_HELP, CACHE_STRINGS, cacheConfigOf, type ObjectCacheConfig } from './distccd_cache_options';
import { parseRemoteTarget } from '../log/sinks';
import { parseListenSpec } from '../activation/address';

export const DISTCC_DEFAULT_PORT = 3632;
export const DISTCC_DEFAULT_STATS_PORT = 3633;
export const DEFAULT_NICE = 5;

export interface DistccdConfig {
  readonly allow: readonly string[];
  readonly allowPrivate: boolean;
  readonly listen: readonly string[];
  readonly port: number;
  readonly jobs: number;
  readonly nice: number;
  /** 0 = no limit. */
  readonly jobLifetimeS: number;
  /** Ours: a peer silent this long while we read its request or it reads our answer is dropped. */
  readonly ioTimeoutS: number;
  /** 0 = run until stopped. */
  readonly lifetimeS: number;
  readonly pidFile?: string;
  readonly user?: string;
  readonly logFile?: string;
  /** Ours: --log-remote [udp:|tcp:]HOST[:PORT], a remote syslog collector. */
  readonly logRemote?: string;
  /** Ours: --metrics-listen HOST:PORT, Prometheus metrics and the status page (port 0: any, logged). */
  readonly metricsListen?: string;
  readonly logLevel: Level;
  readonly logStderr: boolean;
  readonly stats: boolean;
  readonly statsPort: number;
  readonly mode: 'auto' | 'inetd' | 'daemon';
  readonly detach: boolean;
  readonly noFork: boolean;
  readonly zeroconf: boolean;
  readonly insecure: boolean;
  readonly compilerDir: string;
  /** The object cache; undefined = off. */
  readonly cache?: ObjectCacheConfig;
  readonly sandbox: SandboxConfig;
}

/** --sandbox and its limits (issue 21; compile/sandbox/sandbox.ts). */
export interface SandboxConfig {
  readonly mode: 'auto' | 'required' | 'off';
  /** bubblewrap: a path, or a name looked up in PATH. */
  readonly bwrap: string;
  readonly memoryMiB: number;
  readonly processes: number;
  readonly maxOutputMiB: number;
  readonly tmpMiB: number;
}

export const SANDBOX_DEFAULTS = Object.freeze({ memoryMiB: 4096, processes: 256, maxOutputMiB: 1024, tmpMiB: 2048 });

export type ParsedCommand = { readonly kind: 'run'; readonly config: DistccdConfig } | { readonly kind: 'help' } | { readonly kind: 'version' };

const STRINGS = ['allow', 'listen', 'port', 'jobs', 'nice', 'job-lifetime', 'io-timeout', 'lifetime', 'pid-file', 'user', 'log-file', 'log-level', 'stats-port', 'compiler-dir', 'log-remote', 'metrics-listen',
  ...CACHE_STRINGS, 'sandbox', 'bwrap', 'sandbox-memory', 'sandbox-processes', 'max-output-size', 'sandbox-tmp-size'];
const BOOLEANS = ['allow-private', 'log-stderr', 'verbose', 'stats', 'inetd', 'daemon', 'detach', 'fork', 'fifo', 'wizard', 'zeroconf', 'enable-tcp-insecure', 'make-me-a-botnet', 'help', 'version', 'cache'];
/** Booleans that only exist in their --no- form. */
const NEGATED_ONLY = new Set(['detach', 'fork', 'fifo', 'cache']);
const ALIASES = { a: 'allow', p: 'port', j: 'jobs', N: 'nice', P: 'pid-file' };

function bad(message: string): UsageError {
  return new UsageError(message, { exitCode: EXIT.BAD_ARGUMENTS });
}

/** `text` when `parse` accepts it; its RangeError as a usage error otherwise. */
function checked(text: string | undefined, parse: (text: string) => unknown): string | undefined {
  if (text === undefined) return undefined;
  try {
    parse(text);
  } catch (error) {
    throw bad((error as Error).message);
  }
  return text;
}

function last(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return String(Array.isArray(value) ? value[value.length - 1] : value);
}

function all(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

function integer(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^[+-]?[0-9]+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    throw bad(`--${name} ${JSON.stringify(value)} is not a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

/**
 * popt, which distccd uses, gives an option that takes a value the next word whatever it looks
 * like (`--nice -5`, `-N -5`); minimist would read `-5` as an option. Joins such pairs into
 * `--name=value` first.
 */
function joinValues(argv: readonly string[]): string[] {
  const valued = new Set([...STRINGS.map((s) => `--${s}`), ...Object.entries(ALIASES).map(([short]) => `-${short}`)]);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (valued.has(arg) && next !== undefined && next.startsWith('-') && next !== '--') {
      const long = arg.startsWith('--') ? arg : `--${ALIASES[arg.slice(1) as keyof typeof ALIASES]}`;
      out.push(`${long}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Parses distccd's arguments; throws UsageError (EXIT.BAD_ARGUMENTS) on anything it does not know. */
export function parseDistccdArgs(args: readonly string[]): ParsedCommand {
  const argv = joinValues(args);
  for (const arg of argv) {
    if (arg === '--') break;
    const long = /^--([^=]+)/.exec(arg)?.[1];
    if (long === undefined) continue;
    if (NEGATED_ONLY.has(long)) throw bad(`unknown option --${long}; see distccd --help`);
    if (long.startsWith('no-') && !NEGATED_ONLY.has(long.slice(3))) throw bad(`unknown option --${long}; see distccd --help`);
  }
  const unknown: string[] = [];
  const parsed = minimist([...argv], {
    string: STRINGS,
    boolean: BOOLEANS,
    alias: ALIASES,
    default: { detach: true, fork: true, fifo: true, cache: true },
    unknown: (arg) => {
      if (arg.startsWith('-')) unknown.push(arg);
      return true;
    },
  });
  if (unknown.length > 0) throw bad(`unknown option ${unknown[0]}; see distccd --help`);
  if (parsed._.length > 0) throw bad(`unexpected argument ${JSON.stringify(String(parsed._[0]))}: distccd takes options only`);
  if (parsed['help'] === true) return { kind: 'help' };
  if (parsed['version'] === true) return { kind: 'version' };
  for (const name of STRINGS) {
    const v = parsed[name];
    if (v === '' || (Array.isArray(v) && v.includes(''))) throw bad(`--${name} needs a value`);
  }
  const wizard = parsed['wizard'] === true;
  if (parsed['inetd'] === true && parsed['daemon'] === true) throw bad('--inetd and --daemon contradict each other: give one');
  let logLevel: Level = 'notice';
  const levelText = last(parsed['log-level']);
  if (levelText !== undefined) {
    try {
      logLevel = parseLevel(levelText);
    } catch (error) {
      throw bad((error as Error).message);
    }
  }
  if (parsed['verbose'] === true || wizard) logLevel = 'debug';
  const config: DistccdConfig = {
    allow: all(parsed['allow']),
    allowPrivate: parsed['allow-private'] === true,
    listen: all(parsed['listen']),
    // Ours: 0 lets the kernel pick a free port, and the "listening" log line names it (tests and
    // side-by-side runs need no port probing).
    port: integer('port', last(parsed['port']), DISTCC_DEFAULT_PORT, 0, 65535),
    jobs: integer('jobs', last(parsed['jobs']), os.availableParallelism() + 2, 1, 10000),
    nice: integer('nice', last(parsed['nice']), DEFAULT_NICE, -20, 40),
    jobLifetimeS: integer('job-lifetime', last(parsed['job-lifetime']), 0, 0, 2 ** 31 / 1000),
    ioTimeoutS: integer('io-timeout', last(parsed['io-timeout']), 300, 1, 2 ** 31 / 1000),
    lifetimeS: integer('lifetime', last(parsed['lifetime']), 0, 0, 2 ** 31 / 1000),
    pidFile: last(parsed['pid-file']),
    user: last(parsed['user']),
    logFile: last(parsed['log-file']),
    logRemote: checked(last(parsed['log-remote']), parseRemoteTarget),
    metricsListen: checked(last(parsed['metrics-listen']), (text) => parseListenSpec(text, { defaultHost: '127.0.0.1' })),
    logLevel,
    logStderr: parsed['log-stderr'] === true || wizard,
    stats: parsed['stats'] === true,
    statsPort: integer('stats-port', last(parsed['stats-port']), DISTCC_DEFAULT_STATS_PORT, 0, 65535),
    mode: wizard || parsed['daemon'] === true ? 'daemon' : parsed['inetd'] === true ? 'inetd' : 'auto',
    detach: parsed['detach'] !== false && !wizard,
    noFork: parsed['fork'] === false || wizard,
    zeroconf: parsed['zeroconf'] === true,
    insecure: parsed['enable-tcp-insecure'] === true || parsed['make-me-a-botnet'] === true,
    compilerDir: last(parsed['compiler-dir']) ?? DEFAULT_MASQUERADE_DIR,
    cache: cacheConfigOf(parsed),
    sandbox: sandboxConfig(parsed),
  };
  // The mDNS record carries the port number: it cannot advertise one the kernel has yet to pick.
  if (config.zeroconf && config.port === 0) throw bad('--zeroconf needs a fixed --port, not 0');
  return { kind: 'run', config: Object.freeze(config) };
}

function sandboxConfig(parsed: Record<string, unknown>): SandboxConfig {
  const mode = last(parsed['sandbox']) ?? 'auto';
  if (mode !== 'auto' && mode !== 'required' && mode !== 'off') throw bad(`--sandbox ${JSON.stringify(mode)} is not one of auto, required, off`);
  const d = SANDBOX_DEFAULTS;
  return Object.freeze({
    mode,
    bwrap: last(parsed['bwrap']) ?? 'bwrap',
    memoryMiB: integer('sandbox-memory', last(parsed['sandbox-memory']), d.memoryMiB, 64, 2 ** 30),
    processes: integer('sandbox-processes', last(parsed['sandbox-processes']), d.processes, 4, 2 ** 22),
    maxOutputMiB: integer('max-output-size', last(parsed['max-output-size']), d.maxOutputMiB, 1, 2 ** 30),
    tmpMiB: integer('sandbox-tmp-size', last(parsed['sandbox-tmp-size']), d.tmpMiB, 1, 2 ** 30),
  });
}

/** "x86_64-pc-linux-gnu", the way distcc's configure names the host. */
export function gnuHost(): string {
  const arch: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', arm: 'arm', ppc64: 'powerpc64le', s390x: 's390x', riscv64: 'riscv64' };
  return `${arch[process.arch] ?? process.arch}-pc-linux-gnu`;
}

export function versionText(): string {
  return [
    `distccd 3.4 ${gnuHost()}`,
    `  (protocols 1, 2 and 3) (default port ${DISTCC_DEFAULT_PORT})`,
    `  distkit distccd on Node.js ${process.version}`,
    '',
    'distcc comes with ABSOLUTELY NO WARRANTY.  distcc is free software, and',
    'you may use, modify and redistribute it under the terms of the GNU ',
    'General Public License version 2 or later.',
    '',
  ].join('\n');
}

export function helpText(): string {
  return `${versionText()}
Usage:
   distccd [OPTIONS]

Options:
    --help                     explain usage and exit
    --version                  show version and exit
    -P, --pid-file FILE        save daemon process id to file
    -N, --nice LEVEL           lower priority, 20=most nice
    --user USER                if run by root, change to this persona
    --jobs, -j LIMIT           maximum tasks at any time
    --job-lifetime SECONDS     maximum lifetime of a compile request
    --io-timeout SECONDS       drop a client whose request or answer takes longer (300)
    --lifetime SECONDS         exit after this many seconds
  Networking:
    -p, --port PORT            TCP port to listen on (0: any free one, logged)
    --listen ADDRESS           IP address to listen on
    -a, --allow IP[/BITS]      client address access control
    --allow-private            allow the private networks and loopback
    --stats                    enable statistics reporting via HTTP server
    --stats-port PORT          TCP port to listen on for statistics requests (0: any)
    --zeroconf                 register via mDNS/DNS-SD
  Compilers:
    --compiler-dir DIR         masquerade directory of allowed compilers (${DEFAULT_MASQUERADE_DIR})
    --enable-tcp-insecure      run any compiler the client names (DANGEROUS)
${CACHE_HELP}  Sandbox (bubblewrap; each compiler sees its own directories and its job's files only):
    --sandbox MODE             auto (use when bwrap works, warn when not), required, off (auto)
    --bwrap PATH               the bubblewrap program (bwrap, from PATH)
    --sandbox-memory MIB       address space of each compiler process (${SANDBOX_DEFAULTS.memoryMiB})
    --sandbox-processes N      processes of the daemon's user a compiler (or its sandbox host) may reach (${SANDBOX_DEFAULTS.processes})
    --max-output-size MIB      largest file a compile may write: object, stderr, temp files (${SANDBOX_DEFAULTS.maxOutputMiB})
    --sandbox-tmp-size MIB     size of the compiler's private /tmp (${SANDBOX_DEFAULTS.tmpMiB})
  Debug and trace:
    --log-level=LEVEL          set detail level for log file
      levels: critical, error, warning, notice, info, debug
    --verbose                  set log level to "debug"
    --no-detach                don't detach from parent (for daemontools, etc)
    --log-file=FILE            send messages here instead of syslog
    --log-stderr               send messages to stderr
    --log-remote ADDRESS       also send them to a syslog collector: udp:HOST:PORT, tcp:[::1]:601
    --metrics-listen HOST:PORT Prometheus /metrics and a status page at / (port 0: any, logged)
    --wizard                   for running under gdb
  Mode of operation:
    --inetd                    serve client connected to stdin
    --daemon                   bind and listen on socket

distccd runs either from inetd or as a standalone daemon to compile
files submitted by the distcc client.

distccd should only run on trusted networks.
`;
}
