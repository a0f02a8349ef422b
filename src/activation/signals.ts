// Fixed signal meanings, as OpenBSD daemons have them: SIGTERM (and SIGINT while in the
// foreground) asks for a graceful stop, SIGHUP reopens log files. A second stop signal while
// draining is logged and otherwise changes nothing: the drain timeout already bounds the wait.

import type { Logger } from '../log/index';

export interface SignalActions {
  readonly log: Logger;
  readonly stop: (signal: NodeJS.Signals) => void;
  readonly reopen: () => void;
  /** Also stop on SIGINT (Ctrl-C in a terminal); a detached daemon or inetd child keeps the default. */
  readonly foreground: boolean;
}

/** Installs the handlers; returns a function that removes them. */
export function installSignals(actions: SignalActions): () => void {
  let stopping = false;
  const onStop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      actions.log.notice('signal ignored, already stopping', { signal });
      return;
    }
    stopping = true;
    actions.log.notice('signal stop', { signal });
    actions.stop(signal);
  };
  const onHup = (): void => {
    actions.log.notice('signal reopen', { signal: 'SIGHUP' });
    actions.reopen();
  };
  const stopSignals: NodeJS.Signals[] = actions.foreground ? ['SIGTERM', 'SIGINT'] : ['SIGTERM'];
  for (const s of stopSignals) process.on(s, onStop);
  process.on('SIGHUP', onHup);
  return () => {
    for (const s of stopSignals) process.off(s, onStop);
    process.off('SIGHUP', onHup);
  };
}
