// The live fuzz targets: `cache-live` fuzzes the engine served in this process on a real
// 127.0.0.1 socket (test/cache/cache_server.ts); `cache-server` fuzzes the real dc_server program
// (node dist/src/cli/dc_server.js, started and stopped by PID), reading its log from stderr;
// `cache-proxy` fuzzes dc_client's application side (Upstream + proxyHandler in this
// process) in front of the engine: no application may take the shared upstream connection down;
// `cache-client` does the same to the real dc_client program in front of the real dc_server.

import net from 'node:net';
import { startCacheServer } from '../cache/cache_server';
import { Upstream } from '../../src/cache/proxy/upstream';
import { proxyHandler } from '../../src/cache/proxy/app_session';
import { createLogger, type Level, type LogSink } from '../../src/log/index';
import { fuzzLiveServer } from './cache_live_fuzz';
import type { FuzzTarget } from './fuzz_target';
import path from 'node:path';
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
      // 64 MB of sessions plus Node's own ~60 MB and 32 connections' buffers: 384 MB is a leak.
      const summary = await fuzzLiveServer('cache-server', { ...program, alive: () => program.alive(), rssBytes: () => program.rssBytes(), rssLimitBytes: 384 * 1048576 }, { ...options, concurrency: 32 });
      return summary;
    } finally {
      await program.stop();
    }
  },
};

export const cacheProxyTarget: FuzzTarget = {
  name: 'cache-proxy',
  describe: 'dc_client application sessions in this process, in front of the engine: damaged streams on 32 connections plus a good client',
  async run(options) {
    const server = await startCacheServer({ capacity: 0, maxBytes: MAX_BYTES });
    const lines: string[] = [];
    const log = createLogger('dc_client-fuzz', { level: 'info' });
    const sink: LogSink = { write: (level: Level, line: string) => lines.push(`${level}: ${line}`) };
    log.setSinks([sink]);
    const t = server.target as { host: string; port: number };
    const states: string[] = [];
    const upstream = new Upstream({ kind: 'tcp', host: t.host, port: t.port }, { retryMs: 60_000, log, onState: (st) => states.push(st) });
    upstream.start();
    const sockets = new Set<net.Socket>();
    let nextId = 1;
    const serve = proxyHandler(upstream, { log, idleMs: 0 });
    const proxy = net.createServer({ allowHalfOpen: true }, (socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      void serve({ stream: socket, peer: { kind: 'tcp', address: socket.remoteAddress!, port: socket.remotePort!, family: 'IPv4' }, id: nextId++, listener: 'main' }).finally(() => {
        // As the activation layer does: FIN after the last answer, then release.
        if (!socket.destroyed) socket.end(() => socket.destroy());
        sockets.delete(socket);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const deadline = Date.now() + 5000;
    while (!upstream.connected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    try {
      return await fuzzLiveServer(
        'cache-proxy',
        {
          target: { host: '127.0.0.1', port: (proxy.address() as net.AddressInfo).port },
          lines,
          rssBytes: () => process.memoryUsage.rss(),
          alive: () => true,
          proxy: true,
          problem: () => (states.join(',') === 'connected' && upstream.connected ? undefined : `the upstream connection changed state: ${states.join(',')}`),
        },
        { ...options, concurrency: 32 },
      );
    } finally {
      upstream.stop();
      for (const sk of sockets) sk.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await server.close();
    }
  },
};

const DC_CLIENT = path.join(__dirname, '..', '..', 'src', 'cli', 'dc_client.js');

export const cacheClientTarget: FuzzTarget = {
  name: 'cache-client',
  describe: 'the real dc_client program in front of the real dc_server: damaged streams on 32 application connections plus a good client',
  async run(options) {
    const server = await startServerProgram(['-sessions', '0', '-maxmemory', '64']);
    try {
      const proxy = await startServerProgram(['-listen', 'IP:127.0.0.1:0', '-server', `IP:${server.target.host}:${server.target.port}`, '-loglevel', 'info'], { script: DC_CLIENT });
      try {
        const deadline = Date.now() + 5000;
        while (!proxy.lines.some((l) => /upstream connected/.test(l)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        return await fuzzLiveServer(
          'cache-client',
          {
            target: proxy.target,
            lines: proxy.lines,
            rssBytes: () => proxy.rssBytes(),
            alive: () => proxy.alive() && server.alive(),
            proxy: true,
            rssLimitBytes: 384 * 1048576,
            problem: () => {
              const lost = proxy.lines.filter((l) => /upstream (lost|connect failed)/.test(l));
              return lost.length === 0 ? undefined : `dc_client lost its upstream: ${lost[0]}`;
            },
          },
          { ...options, concurrency: 32 },
        );
      } finally {
        await proxy.stop();
      }
    } finally {
      await server.stop();
    }
  },
};
