// The logger API every program and engine uses: syslog priorities as levels, one line per event
// ("verb key=value ..."), program name and pid on every line. Sinks (stderr, file, syslog daemon
// facility, remote collector) are attached by configureLogging in ./sinks; until then lines go to
// stderr, so nothing is lost during start-up.

export const LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;
export type Level = (typeof LEVELS)[number];

const SEVERITY: Readonly<Record<Level, number>> = Object.freeze(Object.fromEntries(LEVELS.map((level, i) => [level, i])) as Record<Level, number>);

/** Severity number as syslog uses it (emerg 0 .. debug 7). A property read, not indexOf: every
 * connection asks enabled('debug') when it opens and closes (two array scans showed in a
 * connection per request's profile). */
export function severityOf(level: Level): number {
  return SEVERITY[level];
}

export function parseLevel(text: string): Level {
  const lower = text.toLowerCase();
  const alias: Record<string, Level> = { error: 'err', warn: 'warning', panic: 'emerg', critical: 'crit' };
  const level = (LEVELS as readonly string[]).includes(lower) ? (lower as Level) : alias[lower];
  if (level === undefined) {
    throw new RangeError(`Unknown log level "${text}": use one of ${LEVELS.join(' ')}`);
  }
  return level;
}

export type Fields = Record<string, string | number | boolean | bigint | null | undefined>;

/** A sink receives each line once it passed the level filter. */
export interface LogSink {
  write(level: Level, line: string): void;
  reopen?(): void;
  close?(): void;
}

export interface Logger {
  log(level: Level, message: string, fields?: Fields): void;
  emerg(message: string, fields?: Fields): void;
  alert(message: string, fields?: Fields): void;
  crit(message: string, fields?: Fields): void;
  err(message: string, fields?: Fields): void;
  warning(message: string, fields?: Fields): void;
  notice(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  enabled(level: Level): boolean;
  /** A logger that adds `fields` to every line (e.g. job=17). */
  child(fields: Fields): Logger;
}

/** A process's logger (createLogger in ./index): the level and the sinks are its to change. */
export interface RootLogger extends Logger {
  readonly program: string;
  level: Level;
  /** Replaces every sink (the old ones are closed unless kept in the new list). */
  setSinks(sinks: LogSink[]): void;
  /** SIGHUP: reopen log files. */
  reopen(): void;
  close(): void;
}

/** Renders `message k=v k=v`; values with spaces, quotes or '=' are quoted. */
export function formatLine(message: string, fields?: Fields): string {
  if (fields === undefined) return message;
  let line = message;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = String(value);
    line += ` ${key}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`;
  }
  return line;
}

/**
 * Tags a message C distccd also logs with the C function that logs it, `(dcc_job_summary) client:
 * ...`: the log parsers of existing farms grep that form. Syslog gets it as it is (C's syslog
 * message is `(function) text` too); file and stderr lines get C's prefix (see recordLine).
 */
export function tagAsC(fn: string, message: string): string {
  return `(${fn}) ${message}`;
}

/** A message tagged by tagAsC. */
const C_TAGGED = /^\([A-Za-z_]\w*\) /;

/**
 * The whole line a log file (with `time`) or stderr gets: `[time ]program[pid] level: line`, or,
 * for a line tagged by tagAsC, exactly what C distccd writes, `program[pid] (function) text`,
 * without the time (C writes none) so parsers that count fields still find theirs.
 */
export function recordLine(program: string, pid: number, level: Level, line: string, time?: Date): string {
  if (C_TAGGED.test(line)) return `${program}[${pid}] ${line}`;
  return `${time === undefined ? '' : `${time.toISOString()} `}${program}[${pid}] ${level}: ${line}`;
}
