// Holds N idle connections to a cache server in its own process (so the measuring client's
// latency carries none of their cost in its own event loop and heap): args host port n. Prints
// "open N" once all are connected; when its stdin closes it prints "closed K" (how many the
// server closed meanwhile), destroys them and exits.

import { raiseNoFile, openIdle } from './cache_load';

async function main(): Promise<void> {
  const [host, port, n] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
  raiseNoFile(n + 256);
  const idle = await openIdle({ host, port }, n);
  process.stdout.write(`open ${idle.sockets.length}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    process.stdout.write(`closed ${idle.closed()}\n`, () => {
      for (const s of idle.sockets) s.destroy();
      process.exit(0);
    });
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`idle holder: ${String(error)}\n`);
  process.exit(1);
});
