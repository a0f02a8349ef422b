// Where a Redis is, from the URL a user gives: `redis://host:port/db` (TCP), `rediss://...` (TLS)
// and `unix:///path/to/redis.sock?db=N`. A password never comes in a URL: a command line is
// visible to every user of the machine in ps and /proc, so it comes from a password file (see
// ./redis_connection); a URL that carries one is refused with a message saying so. A username
// (an ACL user) may be given in the URL.

import { UsageError } from '../errors';

export interface RedisEndpoint {
  /** The URL as given, for log lines. */
  readonly url: string;
  readonly host?: string;
  readonly port?: number;
  /** A unix socket path (unix:// URLs). */
  readonly path?: string;
  readonly tls: boolean;
  readonly username?: string;
  readonly db: number;
}

const DEFAULT_PORT = 6379;

/** Parses one Redis URL; UsageError (stating the URL and what to do) when it cannot be used. */
export function parseRedisUrl(text: string): RedisEndpoint {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`Redis URL "${text}" is not a URL: write redis://host:port, rediss://host:port or unix:///path/to/redis.sock`);
  }
  if (url.password !== '') {
    throw new UsageError(`Redis URL "${url.protocol}//${url.host}${url.pathname}" carries a password, which every user sees in ps: put the password in a file and give the password file option instead`);
  }
  const username = url.username === '' ? {} : { username: decodeURIComponent(url.username) };
  switch (url.protocol) {
    case 'redis:':
    case 'rediss:': {
      if (url.hostname === '') throw new UsageError(`Redis URL "${text}" names no host`);
      const port = url.port === '' ? DEFAULT_PORT : Number(url.port);
      const db = dbOf(text, url.pathname.replace(/^\//, ''));
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      return { url: text, host, port, tls: url.protocol === 'rediss:', db, ...username };
    }
    case 'unix:': {
      const socketPath = decodeURIComponent(url.pathname);
      if (url.host !== '' || !socketPath.startsWith('/')) {
        throw new UsageError(`Redis URL "${text}" must name an absolute socket path: unix:///path/to/redis.sock`);
      }
      return { url: text, path: socketPath, tls: false, db: dbOf(text, url.searchParams.get('db') ?? ''), ...username };
    }
    default:
      throw new UsageError(`Redis URL "${text}" has scheme ${url.protocol} : use redis://, rediss:// or unix://`);
  }
}

function dbOf(text: string, value: string): number {
  if (value === '') return 0;
  if (!/^\d{1,5}$/.test(value)) throw new UsageError(`Redis URL "${text}": database "${value}" is not a number`);
  return Number(value);
}
