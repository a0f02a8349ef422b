// The live fuzz targets: `cache-live` fuzzes the engine served in this process on a real
// 127.0.0.1 socket (test/cache/cache_server.ts); `cache-server` fuzzes the real dc_server program
// (node dist/src/cli/dc_server.js, started and stopped by PID), reading its log from stderr.

import { startCacheServer } from '../cache/cache_server';
import { fuzzLiveServer } from './cache_live_fuzz';
import type { FuzzTarget } from './fuzz_target';
import { startServerProgram } from './server_program';

/** No count limit, a 64 MB byte bound: fuzz ADDs cannot grow the store without bound. */
const MAX_BYTES = 64 * 1024 * 1024;

export const cacheLiveTarget: FuzzTarget = {
  name: 'cache-live',
  describe: 'the cache engine on a real 127.0.0.1 socket in this process: damaged streams on 32 connections plus a good client',
  async run(options) {
    const server = await startCacheServer({ capacity: 0, maxBytes: MAX_BYTES });
    try {
      return await fuzzLiveServer('cache-live', { target: server.target as { host: string; port: number }, lines: server.lines, rssBytes: () => process.memoryUsage.rss(), alive: () => true }, { ...options, concurrency: 32 });
    } finally {
      await server.close();
    }
  },
};

export const cacheServerTarget: FuzzTarget = {
  name: 'cache-server',
  describe: 'the real dc_server program (-sessions 0 -maxmemory 64): damaged streams on 32 connections plus a good client',
  async run(options) {
    const program = await startServerProgram(['-sessions', '0', '-maxmemory', '64', '-loglevel', 'info']);
    try {
      const summary = await fuzzLiveServer('cache-server', program, { ...options, concurrency: 32 });
      return summary;
    } finally {
      await program.stop();
    }
  },
};
