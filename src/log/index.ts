// The root logger of a process: a level threshold and a list of sinks. Programs create one with
// createLogger(program) at start-up (it writes to stderr until configureLogging attaches the real
// sinks) and hand it, or children of it, to the activation layer and the engines.

import { formatLine, severityOf, LEVELS, type Fields, type Level, type Logger, type LogSink, type RootLogger } from './logger';
import { stderrSink } from './sinks';

export * from './logger';
export { configureLogging, type LoggingOptions } from './configure';
export { fileSink, syslogSink, remoteSink, stderrSink, parseRemoteTarget, flushLogging, droppedRemoteLines, stderrIsJournal, type RemoteTarget } from './sinks';
export { protectStderr, reopenFd, type StdioOwner } from './stdio';

class Node implements Logger {
  readonly #root: Root;
  readonly #fields: Fields | undefined;
  constructor(root: Root, fields: Fields | undefined) {
    this.#root = root;
    this.#fields = fields;
  }
  log(level: Level, message: string, fields?: Fields): void {
    if (!this.#root.enabled(level)) return;
    const merged = this.#fields === undefined ? fields : { ...this.#fields, ...fields };
    this.#root.emit(level, formatLine(message, merged));
  }
  emerg(m: string, f?: Fields): void { this.log('emerg', m, f); }
  alert(m: string, f?: Fields): void { this.log('alert', m, f); }
  crit(m: string, f?: Fields): void { this.log('crit', m, f); }
  err(m: string, f?: Fields): void { this.log('err', m, f); }
  warning(m: string, f?: Fields): void { this.log('warning', m, f); }
  notice(m: string, f?: Fields): void { this.log('notice', m, f); }
  info(m: string, f?: Fields): void { this.log('info', m, f); }
  debug(m: string, f?: Fields): void { this.log('debug', m, f); }
  enabled(level: Level): boolean { return this.#root.enabled(level); }
  child(fields: Fields): Logger {
    return new Node(this.#root, this.#fields === undefined ? fields : { ...this.#fields, ...fields });
  }
}

class Root extends Node implements RootLogger {
  readonly program: string;
  level: Level = 'notice';
  #sinks: LogSink[];
  constructor(program: string) {
    super(undefined as unknown as Root, undefined);
    this.program = program;
    this.#sinks = [stderrSink(program)];
  }
  override enabled(level: Level): boolean {
    return severityOf(level) <= severityOf(this.level);
  }
  override log(level: Level, message: string, fields?: Fields): void {
    if (this.enabled(level)) this.emit(level, formatLine(message, fields));
  }
  override child(fields: Fields): Logger {
    return new Node(this, fields);
  }
  emit(level: Level, line: string): void {
    for (const sink of this.#sinks) {
      try {
        sink.write(level, line);
      } catch {
        // A broken sink must never take the daemon down; the other sinks still get the line.
      }
    }
  }
  setSinks(sinks: LogSink[]): void {
    for (const old of this.#sinks) if (!sinks.includes(old)) old.close?.();
    this.#sinks = sinks;
  }
  reopen(): void {
    for (const sink of this.#sinks) {
      try {
        sink.reopen?.();
      } catch (error) {
        // Runs from the SIGHUP handler: a throw here would kill the daemon and every session.
        this.emit('warning', formatLine('log reopen failed', { error: (error as NodeJS.ErrnoException).code ?? (error as Error).message }));
      }
    }
  }
  close(): void {
    for (const sink of this.#sinks) sink.close?.();
    this.#sinks = [];
  }
}

export function createLogger(program: string, options: { level?: Level } = {}): RootLogger {
  const root = new Root(program);
  if (options.level !== undefined) root.level = options.level;
  return root;
}

export { LEVELS };
