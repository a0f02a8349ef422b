// Debian's real redis-server for the tests, one module for every Redis test: a standalone server
// on a unix socket in its own temp dir (and on a loopback TCP port when asked), and a Redis
// Cluster of three masters with one replica each built by `redis-cli --cluster create`. No
// persistence (save "" and appendonly no), readiness from the server's "Ready to accept
// connections" line, every process ended by its PID when the test ends.
//
// redis-server cannot bind port 0 and say what it got, so a TCP start names a port and tries
// again on a fresh one when the port was taken meanwhile (the PORT_TAKEN pattern of free_port.ts).
// A cluster node also binds port+10000 for its bus, so cluster ports come from a range where that
// stays below 65536.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Daemon } from './daemon';
import { onFreePort, PORT_TAKEN } from './free_port';
import { tempDir, type AfterHook } from './temp_dir';

const run = promisify(execFile);
/** redis 7 says "Ready to accept connections tcp" or "The server is now ready to accept connections at PATH". */
const READY = /ready to accept connections/i;
/** How long a node may be silent before the cluster fails it over (ms): short, for the tests. */
const NODE_TIMEOUT_MS = 1000;

export interface RedisOptions {
  /** Also listen on a loopback TCP port (default: the unix socket only). */
  readonly tcp?: boolean;
  /** requirepass (and masterauth in a cluster). */
  readonly password?: string;
}

/** One redis-server process; restart() brings it back on the same socket and port. */
export class RedisServer {
  readonly dir: string;
  readonly socket: string;
  /** The TCP port, when started with tcp. */
  readonly port: number | undefined;
  readonly #args: readonly string[];
  #daemon: Daemon;

  private constructor(dir: string, socket: string, port: number | undefined, args: readonly string[], daemon: Daemon) {
    this.dir = dir;
    this.socket = socket;
    this.port = port;
    this.#args = args;
    this.#daemon = daemon;
  }

  /** Starts one server in `dir` and waits until it accepts connections; PORT_TAKEN when its port was. */
  static async start(dir: string, port: number | undefined, extra: readonly string[] = []): Promise<RedisServer | typeof PORT_TAKEN> {
    fs.mkdirSync(dir, { recursive: true });
    const socket = path.join(dir, 'redis.sock');
    const args = [
      '--port', String(port ?? 0),
      '--bind', '127.0.0.1',
      '--unixsocket', socket,
      '--unixsocketperm', '700',
      '--dir', dir,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--logfile', '',
      ...extra,
    ];
    const daemon = new Daemon('redis-server', args);
    const ready = await daemon.waitForBind(READY);
    if (ready === PORT_TAKEN) return PORT_TAKEN;
    return new RedisServer(dir, socket, port, args, daemon);
  }

  get pid(): number {
    return this.#daemon.pid;
  }

  get running(): boolean {
    return this.#daemon.running;
  }

  /** Everything the server logged. */
  get output(): string {
    return this.#daemon.output;
  }

  /** unix:// URL of its socket. */
  get unixUrl(): string {
    return `unix://${this.socket}`;
  }

  /** redis:// URL of its TCP port (started with tcp). */
  get tcpUrl(): string {
    if (this.port === undefined) throw new Error('this redis-server was started without tcp');
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Kills it at once (SIGKILL by PID): an outage, not an orderly stop. */
  async kill(): Promise<void> {
    await this.#daemon.stop('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.#daemon.stop('SIGTERM', 5000);
  }

  /** Starts it again with the same arguments (same socket, same port) and waits until ready. */
  async restart(): Promise<void> {
    if (this.running) await this.stop();
    this.#daemon = new Daemon('redis-server', this.#args);
    await this.#daemon.waitFor(READY);
  }

  /** Runs redis-cli against it over the unix socket and returns its stdout. */
  async cli(args: readonly string[], password?: string): Promise<string> {
    return redisCli(['-s', this.socket, ...(password === undefined ? [] : ['--no-auth-warning', '-a', password]), ...args]);
  }
}

/** Runs redis-cli with `args`; rejects on a non-zero exit. */
export async function redisCli(args: readonly string[], input?: string): Promise<string> {
  const child = run('redis-cli', [...args], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
  if (input !== undefined) child.child.stdin?.end(input);
  return (await child).stdout;
}

function passwordArgs(password: string | undefined, cluster: boolean): string[] {
  if (password === undefined) return [];
  return ['--requirepass', password, ...(cluster ? ['--masterauth', password] : [])];
}

/** A standalone redis-server for this test, stopped when it ends. */
export async function startRedis(t: AfterHook, options: RedisOptions = {}): Promise<RedisServer> {
  const dir = tempDir(t, 'distkit-redis-');
  const extra = passwordArgs(options.password, false);
  const server =
    options.tcp === true
      ? await onFreePort((port) => RedisServer.start(dir, port, extra))
      : await RedisServer.start(dir, undefined, extra);
  if (server === PORT_TAKEN) throw new Error('redis-server found port 0 taken');
  t.after(() => server.stop());
  return server;
}

/** Cluster ports: node port p and bus port p + 10000 both below 65536, away from the ephemeral range's start. */
function clusterPort(): number {
  return 20_000 + Math.floor(Math.random() * 10_000);
}

export interface RedisClusterOptions {
  readonly password?: string;
}

/** Three masters and three replicas on loopback TCP ports. */
export class RedisCluster {
  readonly nodes: readonly RedisServer[];
  readonly #password: string | undefined;

  constructor(nodes: readonly RedisServer[], password: string | undefined) {
    this.nodes = nodes;
    this.#password = password;
  }

  /** redis:// URLs of every node (any of them is a seed). */
  get urls(): string[] {
    return this.nodes.map((n) => n.tcpUrl);
  }

  #auth(): string[] {
    return this.#password === undefined ? [] : ['--no-auth-warning', '-a', this.#password];
  }

  /** redis-cli against one node over TCP (cluster replies name TCP addresses). */
  async cli(node: RedisServer, args: readonly string[]): Promise<string> {
    return redisCli(['-h', '127.0.0.1', '-p', String(node.port), ...this.#auth(), ...args]);
  }

  /** The live nodes whose `role` says master. */
  async masters(): Promise<RedisServer[]> {
    const live = this.nodes.filter((n) => n.running);
    const roles = await Promise.all(live.map((n) => this.cli(n, ['role']).catch(() => '')));
    return live.filter((_, i) => roles[i]!.startsWith('master'));
  }

  /** The node serving `key`'s slot as master now. */
  async masterOf(key: string): Promise<RedisServer> {
    const slot = Number((await this.cli(this.nodes.find((n) => n.running)!, ['cluster', 'keyslot', key])).trim());
    for (const node of await this.masters()) {
      const nodes = await this.cli(node, ['cluster', 'nodes']);
      const mine = nodes.split('\n').find((l) => l.includes('myself'));
      if (mine !== undefined && ownsSlot(mine, slot)) return node;
    }
    throw new Error(`no master owns slot ${slot} of ${key}`);
  }

  /** Waits until every live node says cluster_state:ok, each master has a replica in sync
   * (when `replicas`), and all agree on the masters. */
  async waitHealthy(ms = 30_000, replicas = true): Promise<void> {
    await waitForAsync(async () => {
      const live = this.nodes.filter((n) => n.running);
      const infos = await Promise.all(live.map((n) => this.cli(n, ['cluster', 'info']).catch(() => '')));
      if (!infos.every((i) => i.includes('cluster_state:ok'))) return false;
      if (!replicas) return true;
      const masters = await this.masters();
      if (masters.length !== 3) return false;
      const repl = await Promise.all(masters.map((m) => this.cli(m, ['info', 'replication'])));
      return repl.every((r) => /connected_slaves:[1-9]/.test(r) && /slave\d+:.*state=online/.test(r));
    }, ms, 'the Redis Cluster to become healthy');
  }

  /**
   * Kills `master` (SIGKILL by PID) and waits until its replica has taken over and the survivors
   * say cluster_state:ok again; returns how long the failover took (ms).
   */
  async killMasterAndWaitFailover(master: RedisServer, ms = 30_000): Promise<number> {
    const started = Date.now();
    await master.kill();
    await waitForAsync(async () => {
      const masters = await this.masters();
      if (masters.length !== 3) return false;
      const infos = await Promise.all(masters.map((n) => this.cli(n, ['cluster', 'info']).catch(() => '')));
      return infos.every((i) => i.includes('cluster_state:ok'));
    }, ms, 'the replica of the killed master to take over');
    return Date.now() - started;
  }

  /** Moves `slot` (and its keys) from master `from` to master `to`, telling every master: a
   * client's slot map still names `from`, which answers MOVED. */
  async moveSlot(slot: number, from: RedisServer, to: RedisServer): Promise<void> {
    const idOf = async (node: RedisServer): Promise<string> => (await this.cli(node, ['cluster', 'myid'])).trim();
    const [fromId, toId] = [await idOf(from), await idOf(to)];
    await this.cli(to, ['cluster', 'setslot', String(slot), 'importing', fromId]);
    await this.cli(from, ['cluster', 'setslot', String(slot), 'migrating', toId]);
    const keys = (await this.cli(from, ['cluster', 'getkeysinslot', String(slot), '100'])).split('\n').filter((k) => k !== '');
    if (keys.length > 0) await this.cli(from, ['migrate', '127.0.0.1', String(to.port), '', '0', '5000', 'keys', ...keys]);
    for (const master of await this.masters()) await this.cli(master, ['cluster', 'setslot', String(slot), 'node', toId]);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

function ownsSlot(nodeLine: string, slot: number): boolean {
  return nodeLine
    .split(' ')
    .slice(8)
    .some((range) => {
      const [lo, hi] = range.split('-').map(Number);
      return lo !== undefined && slot >= lo && slot <= (hi ?? lo);
    });
}

async function waitForAsync(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A Redis Cluster of three masters with one replica each, stopped when the test ends. */
export async function startRedisCluster(t: AfterHook, options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const root = tempDir(t, 'distkit-redis-cluster-');
  const extra = [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
    // A replica takes over however long it was disconnected: the tests kill masters on purpose.
    '--cluster-replica-validity-factor', '0',
    ...passwordArgs(options.password, true),
  ];
  const nodes: RedisServer[] = [];
  t.after(() => Promise.all(nodes.map((n) => n.stop())));
  for (let i = 0; i < 6; i++) {
    const dir = path.join(root, `node${i}`);
    let started: RedisServer | typeof PORT_TAKEN = PORT_TAKEN;
    for (let tries = 0; started === PORT_TAKEN && tries < 10; tries++) started = await RedisServer.start(dir, clusterPort(), extra);
    if (started === PORT_TAKEN) throw new Error('10 cluster ports were all taken');
    nodes.push(started);
  }
  const cluster = new RedisCluster(nodes, options.password);
  await redisCli([
    '--cluster', 'create',
    ...nodes.map((n) => `127.0.0.1:${n.port}`),
    '--cluster-replicas', '1',
    '--cluster-yes',
    ...(options.password === undefined ? [] : ['--no-auth-warning', '-a', options.password]),
  ]);
  await cluster.waitHealthy();
  return cluster;
}
