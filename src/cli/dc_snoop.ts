#!/usr/bin/env node
// dc_snoop: a transparent distcache proxy for debugging. Each connection accepted on -listen is
// relayed byte for byte to -connect (alias -server) and every frame that passes is printed on
// stdout, decoded. Options -> frozen config -> runService(snoopHandler).

import { createLogger } from '../log/index';
import { runService, servesOneConnection } from '../activation/index';
import { parseCacheAddress, toConnectTarget } from '../cache/address';
import { snoopHandler } from '../cache/snoop/relay';
import { LOGREMOTE_USAGE, installKillable, logRemoteOf, prepareRuntime, runMain, valuesOrExit } from './cache_cli';
import { parseSingleDash } from './single_dash';
import { EXIT } from '../errors';

const PROGRAM = 'dc_snoop';
/** Connections relayed at once; more wait to be accepted. */
const MAX_CONNECTIONS = 256;

const USAGE = [
  '',
  'Usage: dc_snoop [options]     where options are:',
  '  -listen <addr>   (where clients connect; required; ours: repeatable)',
  '  -connect <addr>  (the cache server to relay to; required)',
  '  -server <addr>   (ours: the same as -connect)',
  LOGREMOTE_USAGE.replace('-logremote <addr>  ', '-logremote <addr> '),
  '  -<h|help|?>      (print this text)',
  '',
  ' Every frame relayed is printed on stdout: direction (c2s, s2c), uid, command, frame number,',
  ' data length and a decoded preview. The bytes themselves are relayed unchanged.',
  '',
].join('\n') + '\n';

async function main(): Promise<number> {
  const log = createLogger(PROGRAM);
  const values = valuesOrExit(
    parseSingleDash(process.argv.slice(2), {
      strings: ['listen', 'connect', 'logremote'],
      booleans: [],
      repeatable: ['listen'],
      aliases: { server: 'connect' },
    }),
    USAGE,
  );
  const listenTexts = values.listen as readonly string[];
  const connectText = values.connect as string | undefined;
  if (connectText === undefined || listenTexts.length === 0) {
    process.stderr.write('Error, must provide -connect and -listen\n');
    return EXIT.FAILED;
  }
  const target = toConnectTarget(parseCacheAddress(connectText));
  const logRemote = logRemoteOf(values);
  const runtime = await prepareRuntime(log, listenTexts, { detach: false, killable: true, syslog: false, ...(logRemote === undefined ? {} : { logRemote }) });
  // Serving one connection on stdin/stdout (inetd, FD:0): stdout is the peer, so lines go to the log.
  const print = servesOneConnection(runtime.decision)
    ? (line: string): void => log.notice(line)
    : (line: string): void => void process.stdout.write(`${line}\n`);
  const signals = installKillable({ killable: true, log });
  const service = await runService({
    program: PROGRAM,
    log,
    handlers: { main: snoopHandler({ target, log, print }) },
    ...runtime,
    maxConnections: MAX_CONNECTIONS,
    drainTimeoutMs: 1000,
  });
  signals.attach(service);
  return service.done;
}

runMain(main, USAGE, createLogger(PROGRAM));
