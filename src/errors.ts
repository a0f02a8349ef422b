// The one base error of distkit. Every failure a user can see carries a stable `code` (a short
// kebab-case word a test or a caller can match on) and a message that states the value and what
// to do. Programs map codes to their own exit statuses (distccd keeps distcc's 100-120).

export class DistkitError extends Error {
  readonly code: string;
  readonly exitCode: number | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DistkitError';
    this.code = code;
    this.exitCode = options.exitCode;
  }
}
