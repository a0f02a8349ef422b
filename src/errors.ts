// The one base error of distkit, the one error for bad usage, and the one table of exit codes.
// Every failure a user can see carries a stable `code` (a short kebab-case word a test or a
// caller can match on) and a message that states the value and what to do. Every exit status of
// every program is named once, below, and written nowhere else: distccd keeps distcc's
// (src/exitcode.h, 100-120), also used as a compile job's result; the distcache programs
// (dc_server, dc_client, dc_snoop) exit 0 or 1 as the originals do.

interface ExitCode {
  readonly status: number;
  /** The C original's name for it. */
  readonly original: string;
  /** Which programs exit with it, and when. */
  readonly meaning: string;
}

export const EXIT_CODES = Object.freeze({
  OK: { status: 0, original: '0 (all four originals)', meaning: 'all programs: stopped cleanly (SIGTERM, -killable, --lifetime), --help, --version, a detached daemon listening, a single connection served' },
  FAILED: { status: 1, original: '1 (dc_server, dc_client, dc_snoop)', meaning: 'distcache programs: any failure, bad usage included (printed with the usage)' },
  DISTCC_FAILED: { status: 100, original: 'EXIT_DISTCC_FAILED', meaning: 'distccd: a start-up failure without a more precise code; a job the server could not run (STAT 100)' },
  BAD_ARGUMENTS: { status: 101, original: 'EXIT_BAD_ARGUMENTS', meaning: 'distccd: bad usage (options, --allow, TMPDIR, --zeroconf without avahi-publish); a job refused as a bad request' },
  BIND_FAILED: { status: 102, original: 'EXIT_BIND_FAILED', meaning: 'distccd: cannot bind or adopt a listening socket' },
  IO_ERROR: { status: 107, original: 'EXIT_IO_ERROR', meaning: 'distccd job: the client went away or a read or write failed' },
  PROTOCOL_ERROR: { status: 109, original: 'EXIT_PROTOCOL_ERROR', meaning: 'distccd job: the request broke the protocol' },
  COMPILER_MISSING: { status: 110, original: 'EXIT_COMPILER_MISSING', meaning: 'distccd: the compiler directory does not exist; a job whose compiler is missing or not allowed' },
  SETUID_FAILED: { status: 112, original: 'EXIT_SETUID_FAILED', meaning: 'distccd: cannot set up the isolation it was asked for (--sandbox=required without a working bubblewrap)' },
  ACCESS_DENIED: { status: 113, original: 'EXIT_ACCESS_DENIED', meaning: 'distccd --inetd (one connection): the peer is not in --allow' },
  TIMEOUT: { status: 118, original: 'EXIT_TIMEOUT', meaning: 'distccd job: killed after --job-lifetime' },
} satisfies Record<string, ExitCode>);

export type ExitName = keyof typeof EXIT_CODES;

/** The statuses of EXIT_CODES by name: `EXIT.BAD_ARGUMENTS` is 101. */
export const EXIT: { readonly [K in ExitName]: number } = Object.freeze(
  Object.fromEntries(Object.entries(EXIT_CODES).map(([name, entry]) => [name, entry.status])) as { [K in ExitName]: number },
);

export class DistkitError extends Error {
  readonly code: string;
  /** The status the program exits with when this ends it (a value of EXIT); unset: its default. */
  readonly exitCode: number | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DistkitError';
    this.code = code;
    this.exitCode = options.exitCode;
  }
}

/**
 * Bad usage: an unknown option, a value out of range, a contradiction. distccd's carry
 * EXIT.BAD_ARGUMENTS; the distcache programs print it with their usage and exit EXIT.FAILED, as
 * the originals do.
 */
export class UsageError extends DistkitError {
  constructor(message: string, options: { code?: string; exitCode?: number } = {}) {
    super(options.code ?? 'bad-arguments', message, options.exitCode === undefined ? {} : { exitCode: options.exitCode });
    this.name = 'UsageError';
  }
}
