// distccd --zeroconf: advertises _distcc._tcp through avahi-publish (C distccd links the avahi
// client library instead) for as long as the serving process lives, with the port, the CPUs, the
// --jobs limit and the protocols as TXT records.

import os from 'node:os';
import type { RootLogger } from '../log/index';
import { DistkitError, EXIT } from '../errors';
import type { DistccdConfig } from './distccd_options';

// avahi-publish has no way to die with its parent: this shell runs it and holds the read end of a
// pipe from distccd, and ends it at EOF, which any exit of distccd gives (SIGKILL and crashes
// too), so a server that is gone is never left advertised. It exits with the publisher's status.
const PUBLISH_WHILE_PARENT_LIVES = 'exec 3<&0; "$@" </dev/null 3<&- & p=$!; { read -r _ <&3; kill "$p" 2>/dev/null; } & r=$!; wait "$p"; s=$?; kill "$r" 2>/dev/null; exit $s';

/**
 * --zeroconf: checks at once that avahi-publish is there, and returns what publishes
 * _distcc._tcp for as long as this process lives. The caller runs that in the process that
 * serves, once it listens: a daemon that detaches must not advertise from the parent that exits.
 */
export function zeroconfPublisher(config: DistccdConfig, log: RootLogger): () => void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use: only --zeroconf needs it
  const { spawn, spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const found = spawnSync('sh', ['-c', 'command -v avahi-publish'], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new DistkitError('no-zeroconf', '--zeroconf needs avahi-publish (apt-get install avahi-utils) and a running avahi-daemon', { exitCode: EXIT.BAD_ARGUMENTS });
  }
  return () => {
    const name = `distcc@${os.hostname()}`;
    const args = ['-s', name, '_distcc._tcp', String(config.port), 'txtvers=1', `cpus=${os.availableParallelism()}`, `jobs=${config.jobs}`, 'protocols=1,2,3'];
    const child = spawn('sh', ['-c', PUBLISH_WHILE_PARENT_LIVES, 'sh', 'avahi-publish', ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('exit', (code) => log.warning('zeroconf publisher exited', { code }));
    child.on('error', (error) => log.warning('zeroconf publisher failed', { error: error.message }));
    log.info('zeroconf publishing', { service: '_distcc._tcp', name, port: config.port });
  };
}
