// The metrics listener every daemon may open (--metrics-listen, -metrics, or the socket systemd
// passes under the name "metrics"): Prometheus's /metrics, the status page at / and its data at
// /status.json. It is served apart from the connection pool, so a scrape never waits behind
// compile jobs or counts against their limit, and a slow page never delays a job. Everything
// else is a 404; only GET and HEAD are answered.

import type http from 'node:http';
import type net from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsEndpoints {
  readonly registry: Registry;
  /** The status page's data (program specific), sent as /status.json. */
  readonly status: () => object;
  /** The status page: one self-contained HTML document. */
  readonly page: string;
  readonly program: string;
}

/** Inherited fds of this name are the metrics listener, not one of the service's own. */
export const METRICS_FD_NAME = 'metrics';

/** An HTTP server that is given its connections (see acceptInto); it never listens itself. */
export function createMetricsServer(endpoints: MetricsEndpoints): http.Server {
  // Required here: node:http cannot be loaded while distccd's startup snapshot is built, and only
  // a daemon asked for metrics needs it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createServer } = require('node:http') as typeof import('node:http');
  const started = Date.now();
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const send = (type: string, body: string): void => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (url === '/metrics') {
      endpoints.registry.metrics().then(
        (text) => send(endpoints.registry.contentType, text),
        (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${error.message}\n`),
      );
    } else if (url === '/status.json') {
      const now = Date.now();
      send('application/json', JSON.stringify({ program: endpoints.program, pid: process.pid, now, uptimeSeconds: Math.round((now - started) / 1000), ...endpoints.status() }));
    } else if (url === '/') {
      send('text/html; charset=utf-8', endpoints.page);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /, /metrics or /status.json\n');
    }
  });
  // Scrapes are short; a client that opens and says nothing is not kept.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return server;
}

/** Hands an accepted (paused) socket to `server`, as its own listener would. */
export function acceptInto(server: http.Server): (socket: net.Socket) => void {
  return (socket) => {
    socket.on('error', () => undefined);
    server.emit('connection', socket);
    socket.resume();
  };
}
