// Where log lines go: stderr (until the real sinks are attached, or by choice; when it is the
// journal's stream, each line carries its priority as `<N>` and nothing journald adds itself), a file (reopened
// on SIGHUP for logrotate), the local syslog daemon facility through libc syslog(3) (the `posix`
// package; open it before dropping privileges, /dev/log may be unreachable afterwards), and a
// remote collector over UDP or TCP (the `syslog-client` package, RFC 3164 with the `tag[pid]: `
// header it does not add itself).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatLine, recordLine, severityOf, type Level, type LogSink } from './logger';

/**
 * True when fd 2 is the stream systemd connected to the journal: JOURNAL_STREAM holds its
 * `device:inode` (sd-daemon(3), systemd.exec(5)). A stderr redirected elsewhere (a file, a pipe to
 * a shell) keeps the plain form even though the variable was inherited.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const match = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (match === null) return false;
  try {
    const stat = fs.fstatSync(2, { bigint: true });
    return stat.dev === BigInt(match[1]!) && stat.ino === BigInt(match[2]!);
  } catch {
    return false;
  }
}

/** `<N>line` for each line of `text`: sd-daemon(3)'s SD_WARNING and friends, read by journald. */
export function journalLine(level: Level, text: string): string {
  const prefix = `<${severityOf(level)}>`;
  return `${prefix}${text.replaceAll('\n', `\n${prefix}`)}\n`;
}

/**
 * stderr sink: `program[pid] level: line` (see recordLine), or, when stderr is the journal,
 * `<N>line` (journald records the time, the program and the pid itself). Never used when fd 2 may
 * be a client socket.
 */
export function stderrSink(program: string): LogSink {
  if (stderrIsJournal()) {
    return {
      write(level, line) {
        process.stderr.write(journalLine(level, line));
      },
    };
  }
  return {
    write(level, line) {
      process.stderr.write(`${recordLine(program, process.pid, level, line)}\n`);
    },
  };
}

/** `2026-01-02T03:04:05.678Z program[pid] level: line` (C's form for the lines C has, see
 * recordLine), appended; reopen() follows a rotated file. */
export function fileSink(program: string, file: string): LogSink {
  const absolute = path.resolve(file);
  const open = (): number => fs.openSync(absolute, 'a', 0o640);
  const write = (level: Level, line: string): void => {
    fs.writeSync(fd, `${recordLine(program, process.pid, level, line, new Date())}\n`);
  };
  let fd = open();
  return {
    write,
    reopen() {
      // Open the new file first. If that fails (logrotate's `create` gave it to a user the daemon
      // no longer is, the directory is gone), a SIGHUP must not take the daemon down: keep the
      // old descriptor and say so where the operator is looking, in the old file.
      let next: number;
      try {
        next = open();
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? String(error);
        write('warning', formatLine('log file reopen failed, still writing to the old file', { file: absolute, error: reason }));
        return;
      }
      fs.closeSync(fd);
      fd = next;
    },
    close() {
      if (fd < 0) return;
      fs.closeSync(fd);
      fd = -1;
    },
  };
}

/** libc syslog(3), facility daemon, ident `program`, LOG_PID: `program[pid]: line`. */
export function syslogSink(program: string): LogSink {
  // Loaded here so programs that never log to syslog (inetd children with --log-file) skip it.
  const posix = require('posix') as typeof import('posix');
  posix.openlog(program, { pid: true, ndelay: true }, 'daemon');
  return {
    write(level, line) {
      posix.syslog(level, line);
    },
    close() {
      posix.closelog();
    },
  };
}

export interface RemoteTarget {
  readonly transport: 'udp' | 'tcp';
  readonly host: string;
  readonly port: number;
}

/** Parses "udp:127.0.0.1:514", "tcp:[::1]:6514", "127.0.0.1" (udp, port 514). */
export function parseRemoteTarget(text: string): RemoteTarget {
  const match = /^(?:(udp|tcp):)?(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(text);
  const port = match?.[4] === undefined ? 514 : Number(match[4]);
  if (match === null || port < 1 || port > 65535) {
    throw new RangeError(`Bad syslog collector "${text}": write [udp:|tcp:]host[:port], e.g. udp:127.0.0.1:514`);
  }
  return { transport: match[1] === 'tcp' ? 'tcp' : 'udp', host: match[2] ?? match[3]!, port };
}

/** Lines handed to remote collectors and not yet sent (UDP binds and TCP connects are async). */
const inFlight = new Set<Promise<void>>();

/**
 * Resolves once every line given to a remote sink has been sent, or after `timeoutMs`: called
 * before the process exits, so the last lines ("stopped") are not lost with the socket.
 */
export async function flushLogging(timeoutMs = 2000): Promise<void> {
  if (inFlight.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(inFlight), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
}

let dropped = 0;

/** Lines a remote collector did not take (not connected, send failed) since start: a metric. */
export function droppedRemoteLines(): number {
  return dropped;
}

/**
 * A remote syslog collector, facility daemon. A line that cannot be sent (collector down, send
 * failed) is counted in droppedRemoteLines(); over TCP the next line connects again, so logging
 * resumes by itself once the collector is back.
 */
export function remoteSink(program: string, target: RemoteTarget): LogSink {
  const syslog = require('syslog-client') as typeof import('syslog-client');
  const client = syslog.createClient(target.host, {
    port: target.port,
    transport: target.transport === 'tcp' ? syslog.Transport.Tcp : syslog.Transport.Udp,
    facility: syslog.Facility.System,
    rfc3164: true,
    syslogHostname: os.hostname(),
  });
  // The client is an EventEmitter: an unhandled 'error' (collector down) would kill the daemon.
  client.on('error', () => undefined);
  return {
    write(level: Level, line: string) {
      const sent = new Promise<void>((resolve) => {
        client.log(`${program}[${process.pid}]: ${line}`, { severity: severityOf(level) }, (error?: Error) => {
          if (error !== undefined && error !== null) dropped++;
          resolve();
        });
      });
      inFlight.add(sent);
      void sent.then(() => inFlight.delete(sent));
    },
    close() {
      client.close();
    },
  };
}
