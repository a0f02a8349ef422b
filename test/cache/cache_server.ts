// Test harness: an in-process distcache server (a real net.Server on 127.0.0.1 port 0 or a temp
// unix socket) calling engine.serve the way the activation layer does, and a raw peer that sends
// bytes and reads exactly what comes back.

import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCacheEngine, type CacheEngine, type CacheEngineOptions } from '../../src/cache/engine';
import { DEFAULT_CAPACITY, MemoryStore, type MemoryStoreOptions } from '../../src/cache/stores/memory_store';
import { createLogger, type Level, type Logger, type LogSink } from '../../src/log/index';

export interface TestServer {
  readonly engine: CacheEngine;
  readonly target: { host: string; port: number } | { path: string };
  readonly lines: string[];
  /** Resolves when every connection handler has returned. */
  close(): Promise<void>;
}

/** capacity and maxBytes, when given, size the MemoryStore the server uses (as dc_server's
 * -sessions and -maxmemory do); `engine` (made with the log passed to it) serves instead (a Redis
 * engine). */
export async function startCacheServer(
  options: Partial<CacheEngineOptions> & Partial<MemoryStoreOptions> & { unix?: boolean; engine?: (log: Logger) => CacheEngine } = {},
): Promise<TestServer> {
  const lines: string[] = [];
  const log = createLogger('dc_server-test', { level: 'info' });
  const sink: LogSink = { write: (level: Level, line: string) => lines.push(`${level}: ${line}`) };
  log.setSinks([sink]);
  const { capacity, maxBytes, engine: makeEngine, ...engineOptions } = options;
  const sized = capacity !== undefined || maxBytes !== undefined;
  const store = sized ? new MemoryStore({ capacity: capacity ?? DEFAULT_CAPACITY, ...(maxBytes === undefined ? {} : { maxBytes }) }) : undefined;
  const engine = makeEngine?.(log) ?? createCacheEngine({ ...engineOptions, ...(store === undefined ? {} : { store }), log });
  const handlers = new Set<Promise<void>>();
  const sockets = new Set<net.Socket>();
  let nextId = 1;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    const p = engine
      .serve({
        stream: socket,
        peer: options.unix ? { kind: 'unix' } : { kind: 'tcp', address: socket.remoteAddress!, port: socket.remotePort!, family: 'IPv4' },
        id: nextId++,
        listener: 'main',
      })
      .finally(() => {
        socket.destroy();
        sockets.delete(socket);
        handlers.delete(p);
      });
    handlers.add(p);
  });
  let dir: string | undefined;
  let target: TestServer['target'];
  if (options.unix) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distkit-cache-'));
    const socketPath = path.join(dir, 'dc.sock');
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    target = { path: socketPath };
  } else {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    target = { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
  }
  return {
    engine,
    target,
    lines,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await Promise.all([...handlers]);
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A raw peer: writes bytes, reads exact byte counts, notices when the server closes. */
export class RawPeer {
  readonly socket: net.Socket;
  #received: Buffer[] = [];
  #length = 0;
  #ended = false;
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#received.push(chunk);
      this.#length += chunk.length;
      this.#wake();
    });
    const end = (): void => {
      this.#ended = true;
      this.#wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  static async connect(target: TestServer['target']): Promise<RawPeer> {
    const socket = net.connect({ ...target, allowHalfOpen: true } as net.NetConnectOpts);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawPeer(socket);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  get ended(): boolean {
    return this.#ended;
  }

  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (e) => (e ? reject(e) : resolve())));
  }

  /** Exactly n bytes; rejects when the server closes first or nothing comes within the timeout. */
  async read(n: number, timeoutMs = 10000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.#length < n) {
      if (this.#ended) throw new Error(`server closed after ${this.#length} of ${n} bytes`);
      if (Date.now() > deadline) throw new Error(`only ${this.#length} of ${n} bytes after ${timeoutMs} ms`);
      await this.#wait(deadline - Date.now());
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const head = this.#received[0]!;
      if (head.length <= need) {
        parts.push(head);
        this.#received.shift();
        need -= head.length;
      } else {
        parts.push(head.subarray(0, need));
        this.#received[0] = head.subarray(need);
        need = 0;
      }
    }
    this.#length -= n;
    return Buffer.concat(parts);
  }

  /** Waits for the server to close; returns what arrived meanwhile. */
  async closed(timeoutMs = 10000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      if (Date.now() > deadline) throw new Error(`server did not close within ${timeoutMs} ms`);
      await this.#wait(deadline - Date.now());
    }
    const all = Buffer.concat(this.#received);
    this.#received = [];
    this.#length = 0;
    return all;
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, ms));
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
