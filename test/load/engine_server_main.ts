// A stand-in server process for the load runs while a branch has no dc_server program yet: the
// cache engine behind the real activation layer (runService, standalone on 127.0.0.1 port 0),
// logging "listening on=" like dc_server. Args: [sessions] [port].

import { createLogger } from '../../src/log/index';
import { runService } from '../../src/activation/index';
import { createCacheEngine } from '../../src/cache/engine';
import { MemoryStore } from '../../src/cache/stores/memory_store';

async function main(): Promise<number> {
  const log = createLogger('cache-engine-server');
  const capacity = Number(process.argv[2] ?? 512);
  const engine = createCacheEngine({ store: new MemoryStore({ capacity }), log });
  const service = await runService({
    program: 'cache-engine-server',
    log,
    handlers: { main: (conn) => engine.serve(conn) },
    mode: 'daemon',
    listen: [{ kind: 'tcp', host: '127.0.0.1', port: Number(process.argv[3] ?? 0) }],
    detach: false,
    maxConnections: 0,
    drainTimeoutMs: 2000,
  });
  process.on('SIGTERM', () => void service.stop());
  return service.done;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
