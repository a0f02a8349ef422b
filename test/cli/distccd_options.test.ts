import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { helpText, parseDistccdArgs, versionText, type DistccdConfig } from '../../src/cli/distccd_options';
import { DistkitError } from '../../src/errors';

function config(args: string[]): DistccdConfig {
  const r = parseDistccdArgs(args);
  assert.equal(r.kind, 'run');
  return (r as { config: DistccdConfig }).config;
}

function fails(args: string[], why: RegExp): void {
  assert.throws(() => parseDistccdArgs(args), (e: unknown) => e instanceof DistkitError && e.exitCode === 101 && why.test(e.message));
}

test('parseDistccdArgs takes port 0 as any free port, for the service and the stats page', () => {
  const c = config(['--port', '0', '--stats', '--stats-port', '0']);
  assert.equal(c.port, 0);
  assert.equal(c.statsPort, 0);
});

test('parseDistccdArgs gives distccd defaults when no option is given', () => {
  const c = config([]);
  assert.equal(c.port, 3632);
  assert.equal(c.statsPort, 3633);
  assert.equal(c.jobs, os.availableParallelism() + 2);
  assert.equal(c.nice, 5);
  assert.equal(c.jobLifetimeS, 0);
  assert.equal(c.logLevel, 'notice');
  assert.equal(c.mode, 'auto');
  assert.equal(c.detach, true);
  assert.equal(c.compilerDir, '/usr/lib/distcc');
  assert.ok(Object.isFrozen(c));
});

test('parseDistccdArgs reads every option in long, short, joined and = forms', () => {
  const c = config([
    '-a', '10.0.0.0/8', '--allow=192.168.1.1', '--allow-private', '--listen', '127.0.0.1', '--listen', '::1', '-p3700', '-j', '7', '-N', '10',
    '--job-lifetime', '60', '--lifetime', '5', '-P', '/run/d.pid', '--user', 'distccd', '--log-file', '/tmp/l', '--log-level=warning',
    '--log-stderr', '--stats', '--stats-port', '3800', '--daemon', '--no-detach', '--no-fork', '--zeroconf', '--make-me-a-botnet', '--no-fifo',
    '--compiler-dir', '/opt/masq',
  ]);
  assert.deepEqual(c.allow, ['10.0.0.0/8', '192.168.1.1']);
  assert.deepEqual(c.listen, ['127.0.0.1', '::1']);
  assert.equal(c.allowPrivate, true);
  assert.equal(c.port, 3700);
  assert.equal(c.jobs, 7);
  assert.equal(c.nice, 10);
  assert.equal(c.jobLifetimeS, 60);
  assert.equal(c.lifetimeS, 5);
  assert.equal(c.pidFile, '/run/d.pid');
  assert.equal(c.user, 'distccd');
  assert.equal(c.logFile, '/tmp/l');
  assert.equal(c.logLevel, 'warning');
  assert.equal(c.logStderr, true);
  assert.equal(c.stats, true);
  assert.equal(c.statsPort, 3800);
  assert.equal(c.mode, 'daemon');
  assert.equal(c.detach, false);
  assert.equal(c.noFork, true);
  assert.equal(c.zeroconf, true);
  assert.equal(c.insecure, true);
  assert.equal(c.compilerDir, '/opt/masq');
  assert.equal(config(['--enable-tcp-insecure']).insecure, true);
  assert.equal(config(['--inetd']).mode, 'inetd');
  assert.equal(config(['--verbose']).logLevel, 'debug');
  assert.equal(config(['--log-level', 'error']).logLevel, 'err');
  assert.equal(config(['--log-level', 'critical']).logLevel, 'crit');
});

test('parseDistccdArgs makes --wizard a foreground daemon logging debug to stderr', () => {
  const c = config(['--wizard']);
  assert.deepEqual([c.mode, c.detach, c.noFork, c.logStderr, c.logLevel], ['daemon', false, true, true, 'debug']);
});

test('parseDistccdArgs refuses unknown options, stray arguments and bad numbers with exit 101', () => {
  fails(['--bogus'], /unknown option --bogus/);
  fails(['-x'], /unknown option -x/);
  fails(['--no-verbose'], /unknown option --no-verbose/);
  fails(['--detach'], /unknown option --detach/);
  fails(['extra'], /unexpected argument "extra"/);
  fails(['--port', '65536'], /--port "65536" is not a whole number from 0 to 65535/);
  fails(['--port', '0', '--zeroconf'], /--zeroconf needs a fixed --port, not 0/);
  fails(['-p', '65536'], /--port/);
  fails(['--port', 'http'], /--port "http"/);
  fails(['--jobs', '0'], /--jobs "0"/);
  fails(['--stats-port', '70000'], /--stats-port/);
  assert.equal(config(['--nice=-3']).nice, -3);
  // As popt does: a value may start with '-' when it is the next word.
  assert.equal(config(['--nice', '-3']).nice, -3);
  assert.equal(config(['-N', '-20', '--jobs', '2']).nice, -20);
  fails(['--nice', '-21'], /--nice "-21" is not a whole number from -20 to 40/);
  fails(['--port', '-1'], /--port "-1"/);
  fails(['--job-lifetime', '1.5'], /--job-lifetime/);
  fails(['--log-level', 'loud'], /Unknown log level "loud"/);
  fails(['--allow'], /--allow needs a value/);
  fails(['--inetd', '--daemon'], /contradict/);
});

test('versionText and helpText open the way distccd 3.4 prints them', () => {
  assert.match(versionText(), /^distccd 3\.4 [a-z0-9_]+-pc-linux-gnu\n {2}\(protocols 1, 2 and 3\) \(default port 3632\)\n/);
  assert.equal(parseDistccdArgs(['--version']).kind, 'version');
  assert.match(helpText(), /\nUsage:\n {3}distccd \[OPTIONS\]\n/);
  for (const option of ['--allow', '--allow-private', '--listen', '--jobs', '--nice', '--job-lifetime', '--pid-file', '--user', '--log-file', '--log-level', '--log-stderr', '--verbose', '--stats', '--stats-port', '--inetd', '--daemon', '--no-detach', '--wizard', '--zeroconf', '--enable-tcp-insecure', '--compiler-dir']) {
    assert.ok(helpText().includes(option), option);
  }
});

test('parseDistccdArgs reads --io-timeout with a default of 300 seconds and refuses 0 or a fraction', () => {
  assert.equal(config([]).ioTimeoutS, 300);
  assert.equal(config(['--io-timeout', '5']).ioTimeoutS, 5);
  fails(['--io-timeout', '0'], /--io-timeout "0" is not a whole number from 1/);
  fails(['--io-timeout', '0.5'], /--io-timeout/);
  assert.ok(helpText().includes('--io-timeout'));
});

test('parseDistccdArgs turns the object cache on at /var/cache/distccd with 2 GiB when no cache option is given', () => {
  assert.deepEqual(config([]).cache, { dir: '/var/cache/distccd', maxBytes: 2 * 1024 ** 3, maxEntryBytes: 64 * 1024 ** 2, redis: undefined });
});

test('parseDistccdArgs reads the cache options, sizes with K/M/G, and turns the cache off when given --no-cache or size 0', () => {
  const c = config(['--cache-dir', '/srv/cc', '--cache-size', '512M', '--cache-max-entry=8k']);
  assert.deepEqual(c.cache, { dir: '/srv/cc', maxBytes: 512 * 1024 ** 2, maxEntryBytes: 8192, redis: undefined });
  assert.equal(config(['--no-cache']).cache, undefined);
  assert.equal(config(['--cache-size', '0']).cache, undefined);
  assert.equal(config(['--cache-size', '1000']).cache?.maxBytes, 1000);
  const r = config(['--cache-redis', 'redis://a:6379', '--cache-redis', 'redis://b:6379', '--cache-secret-file', '/etc/s', '--cache-redis-password-file', '/etc/p', '--cache-redis-ttl', '60']);
  assert.deepEqual(r.cache?.redis, { urls: ['redis://a:6379', 'redis://b:6379'], passwordFile: '/etc/p', secretFile: '/etc/s', ttlSeconds: 60, timeoutMs: 50 });
  assert.equal(config(['--cache-redis', 'unix:///run/redis.sock', '--cache-secret-file', '/etc/s']).cache?.redis?.ttlSeconds, 604800);
  assert.equal(config(['--cache-redis', 'redis://r', '--cache-secret-file', '/s', '--cache-redis-timeout', '500']).cache?.redis?.timeoutMs, 500);
  // Redis alone, without a local cache.
  assert.equal(config(['--cache-size', '0', '--cache-redis', 'rediss://r', '--cache-secret-file', '/s']).cache?.maxBytes, 0);
});

test('parseDistccdArgs refuses cache options that cannot work with exit 101', () => {
  fails(['--cache-size', '2X'], /--cache-size "2X" is not a size/);
  fails(['--cache-size', '-1'], /is not a size/);
  fails(['--cache-max-entry', '0'], /must be above 0/);
  fails(['--cache-redis', 'redis://r'], /needs --cache-secret-file/);
  fails(['--cache-redis', 'http://r', '--cache-secret-file', '/s'], /not a redis:\/\/, rediss:\/\/ or unix:\/\/ URL/);
  fails(['--cache-secret-file', '/s'], /only mean something with --cache-redis/);
  fails(['--cache-redis', 'redis://r', '--cache-secret-file', '/s', '--cache-redis-ttl', '0'], /--cache-redis-ttl "0"/);
  fails(['--cache-redis', 'redis://r', '--cache-secret-file', '/s', '--cache-redis-timeout', '0'], /--cache-redis-timeout "0"/);
  fails(['--cache-redis-timeout', '100'], /only mean something with --cache-redis/);
  fails(['--cache-dir'], /--cache-dir needs a value/);
});
