// parseRedisUrl: the endpoint every accepted URL form gives, and the refusals with their reasons.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRedisUrl } from '../../src/redis/redis_url';

test('parseRedisUrl reads host, port, TLS, user and database when given redis, rediss and unix URLs', () => {
  assert.deepEqual(parseRedisUrl('redis://cache.lan'), { url: 'redis://cache.lan', host: 'cache.lan', port: 6379, tls: false, db: 0 });
  assert.deepEqual(parseRedisUrl('rediss://dc@10.0.0.5:6380/3'), { url: 'rediss://dc@10.0.0.5:6380/3', host: '10.0.0.5', port: 6380, tls: true, db: 3, username: 'dc' });
  assert.deepEqual(parseRedisUrl('redis://[::1]:7000'), { url: 'redis://[::1]:7000', host: '::1', port: 7000, tls: false, db: 0 });
  assert.deepEqual(parseRedisUrl('unix:///run/redis/redis.sock?db=2'), { url: 'unix:///run/redis/redis.sock?db=2', path: '/run/redis/redis.sock', tls: false, db: 2 });
});

test('parseRedisUrl refuses a password, a relative socket, a bad database and other schemes with the reason', () => {
  assert.throws(() => parseRedisUrl('redis://:topsecret@h:1'), (e: Error) => /password file/.test(e.message) && !e.message.includes('topsecret'));
  assert.throws(() => parseRedisUrl('unix://run/redis.sock'), /absolute socket path/);
  assert.throws(() => parseRedisUrl('redis://h:1/x'), /database "x" is not a number/);
  assert.throws(() => parseRedisUrl('memcached://h:1'), /scheme memcached:/);
  assert.throws(() => parseRedisUrl('not a url'), /is not a URL/);
});
