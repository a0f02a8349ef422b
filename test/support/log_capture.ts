// A logger whose lines the test reads: "level: line" strings, in order.

import { createLogger, type Level, type Logger } from '../../src/log/index';

export function captureLog(program = 'test'): { readonly log: Logger; readonly lines: string[] } {
  const lines: string[] = [];
  const log = createLogger(program, { level: 'debug' });
  log.setSinks([{ write: (level: Level, line: string) => lines.push(`${level}: ${line}`) }]);
  return { log, lines };
}
