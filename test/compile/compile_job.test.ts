// Every way a compile job can end, driven through the compile handler in a ConnectionPool (the
// one distccd serves with) on a loopback port, and after each: the job slot is free (JobSlots
// busy 0, waiting 0), the job's TMPDIR is empty and no compiler process (nor anything it started)
// is left. The compilers are the real gcc and small shell scripts in a private directory that
// record their pids (and their own child's) before they misbehave.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ConnectionPool } from '../../src/activation/serve';
import { EXIT } from '../../src/errors';
import { CompileJob, type JobService } from '../../src/compile/compile_job';
import { JobSlots } from '../../src/compile/job_slots';
import { createCompileHandler } from '../../src/compile/session';
import { ResponseDecoder, type CompileResponse } from '../../src/compile/wire/response';
import { encodeInteger } from '../../src/compile/wire/tokens';
import { createLogger, type LogSink } from '../../src/log/index';
import { encodeRequest } from '../support/raw_distcc_client';
import { buildPumpRequest, encodePackets } from '../support/pump_client';
import { childrenOf, isAlive } from '../support/proc';
import { tempDir } from '../support/temp_dir';
import { waitUntil } from '../support/wait_until';

/** The fake compilers: each records "its pid, its child's pid" in $PIDS/<name> first. */
const SCRIPTS: Record<string, string> = {
  // Sleeps (in a child of its own) until killed.
  slowcc: 'sleep 60 & echo "$$ $!" > "$PIDS/slowcc.new" && mv "$PIDS/slowcc.new" "$PIDS/slowcc"; wait',
  // Fails as a compiler does: a diagnostic and a non-zero exit.
  failcc: 'echo "$$" > "$PIDS/failcc"; echo "t.c:1: error: nope" >&2; exit 3',
  // Dies of a signal, as a crashing cc1 does.
  killcc: 'echo "$$" > "$PIDS/killcc"; kill -KILL $$',
  // Waits for $PIDS/go, then writes its object: a job the test lets finish when it chooses.
  gatecc: 'sleep 60 & echo "$$ $!" > "$PIDS/gatecc.new" && mv "$PIDS/gatecc.new" "$PIDS/gatecc"\n' +
    'while [ ! -e "$PIDS/go" ]; do sleep 0.02; done; kill $!; out=; while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done; printf obj > "$out"',
};

const SOURCE = 'int main(void) { return 0; }\n';

interface Rig {
  readonly port: number;
  readonly slots: JobSlots;
  readonly pool: ConnectionPool;
  readonly server: net.Server;
  readonly tmp: string;
  readonly pids: string;
  readonly root: string;
  /** The pump client's working directory, with t.c in it. */
  readonly client: string;
  readonly lines: string[];
}

/** A compile service on 127.0.0.1:0 with its own TMPDIR, masquerade/compiler dir and log. */
async function startRig(t: TestContext, options: { jobs?: number; lifetimeMs?: number } = {}): Promise<Rig> {
  const root = tempDir(t, 'distkit-job-');
  const [tmp, bin, pids, client] = ['tmp', 'bin', 'pids', 'client'].map((d) => path.join(root, d)) as [string, string, string, string];
  await Promise.all([tmp, bin, pids, client].map((d) => fs.mkdir(d)));
  await fs.writeFile(path.join(client, 't.c'), SOURCE);
  for (const [name, body] of Object.entries(SCRIPTS)) await fs.writeFile(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  await fs.symlink('/usr/bin/gcc', path.join(bin, 'gcc'));
  const lines: string[] = [];
  const log = createLogger('t', { level: 'debug' });
  const sink: LogSink = { write: (level, line) => lines.push(`${level}: ${line}`) };
  log.setSinks([sink]);
  const slots = new JobSlots(options.jobs ?? 1);
  const job = {
    tmpDir: tmp, nice: 0, lifetimeMs: options.lifetimeMs ?? 0, saveTemps: false,
    env: Object.freeze({ PATH: `${bin}:/usr/bin:/bin`, PIDS: pids }), policy: { masqueradeDir: bin }, pid: process.pid,
  };
  const pool = new ConnectionPool({ log, maxConnections: 0, handlers: { main: createCompileHandler({ log, job, slots }) } });
  const server = net.createServer({ pauseOnConnect: true }, (socket) => pool.accept(socket, 'main'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as net.AddressInfo).port, slots, pool, server, tmp, pids, root, client, lines };
}

/**
 * A protocol-3 request for t.c compiled by `compiler`. The pump client lists headers with the
 * compiler it names, so gcc lists them and `compiler` takes its place in ARGV.
 */
async function pumpRequest(rig: Rig, compiler: string): Promise<Buffer> {
  const { packets } = await buildPumpRequest({ cwd: rig.client, argv: compileArgs('gcc') });
  return encodePackets(packets.map((p) => (p.token === 'ARGV' && p.body?.toString() === 'gcc' ? { ...p, body: Buffer.from(compiler) } : p)));
}

interface Client {
  readonly socket: net.Socket;
  /** The decoded answer, or undefined when the server closed without one. */
  readonly answer: Promise<CompileResponse | undefined>;
}

function connect(rig: Rig, bytes: Buffer): Client {
  const socket = net.connect(rig.port, '127.0.0.1', () => socket.write(bytes));
  const decoder = new ResponseDecoder();
  const answer = new Promise<CompileResponse | undefined>((resolve) => {
    let result: CompileResponse | undefined;
    socket.on('data', (chunk: Buffer) => {
      const r = decoder.push(chunk);
      if (r.kind === 'ok') result = r.value;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(result));
  });
  return { socket, answer };
}

/** How long a state these tests wait for (waitUntil) may take to come. */
const WAIT_MS = 20_000;

/** The pids a fake compiler recorded, once it has; the record is removed for its next run. */
async function pidsOf(rig: Rig, name: string): Promise<number[]> {
  const file = path.join(rig.pids, name);
  await waitUntil(() => readdirSync(rig.pids).includes(name) || undefined, WAIT_MS, () => `${name} to start`);
  const pids = readFileSync(file, 'utf8').trim().split(' ').map(Number);
  await fs.rm(file);
  return pids;
}

/** Waits for every connection to be done, then asserts the job let go of everything. */
async function assertReleased(rig: Rig, pids: readonly number[] = []): Promise<void> {
  assert.equal(await rig.pool.drain(30_000), true, 'every connection finished');
  assert.equal(rig.slots.busy, 0, 'no job slot held');
  assert.equal(rig.slots.waiting, 0, 'nobody waiting for a slot');
  assert.deepEqual(await fs.readdir(rig.tmp), [], 'TMPDIR is empty');
  // SIGKILL to a process group is delivered to each member in turn: give the last one its moment.
  await waitUntil(() => pids.every((pid) => !isAlive(pid)) || undefined, WAIT_MS, () => 'the compiler and its children to die');
  assert.deepEqual(childrenOf(process.pid), [], 'no child process left, not even a zombie');
}

function summaries(rig: Rig): string[] {
  return rig.lines.filter((l) => l.includes(' client: '));
}

const compileArgs = (compiler: string): string[] => [compiler, '-c', 't.c', '-o', 't.o'];

test('a compile job releases everything when it is answered OK, through either writer and in pump mode', async (t) => {
  const rig = await startRig(t);
  for (const version of [1, 2]) {
    const answer = await connect(rig, encodeRequest(version, compileArgs('gcc'), SOURCE)).answer;
    assert.equal(answer?.status, 0, `protocol ${version}`);
    assert.ok((answer?.object.length ?? 0) > 0, 'an object came back');
    await assertReleased(rig);
  }
  const pumped = await connect(rig, await pumpRequest(rig, 'gcc')).answer;
  assert.equal(pumped?.status, 0, 'protocol 3');
  await assertReleased(rig);
  assert.equal(summaries(rig).filter((l) => / COMPILE_OK exit:0 sig:0 core:0 ret:0 time:\d+ms gcc t\.c$/.test(l)).length, 3);
  // What every sink gets, syslog's message as it is: C distccd's `(dcc_job_summary) client: ...`.
  for (const line of summaries(rig)) assert.match(line, /^notice: \(dcc_job_summary\) client: 127\.0\.0\.1:\d+ COMPILE_OK /);
});

test('a compile job releases everything when it is refused for its request, argv or compiler', async (t) => {
  const rig = await startRig(t);
  // DIST 9: unreadable, closed without an answer (after ARGV nothing was heard: nothing prepared).
  assert.equal(await connect(rig, encodeInteger('DIST', 9)).answer, undefined);
  await assertReleased(rig);
  // Bad argv and a compiler outside the masquerade directory are answered with the reason; the
  // temp files were made when ARGV arrived, for the allowed one.
  const noC = await connect(rig, encodeRequest(1, ['gcc', 't.c', '-o', 't.o'], SOURCE)).answer;
  assert.equal(noC?.status, EXIT.BAD_ARGUMENTS << 8);
  await assertReleased(rig);
  const evil = await connect(rig, encodeRequest(1, compileArgs('sh'), SOURCE)).answer;
  assert.equal(evil?.status, EXIT.BAD_ARGUMENTS << 8);
  assert.match(evil?.stderr.toString() ?? '', /sh/);
  await assertReleased(rig);
  assert.equal(summaries(rig).filter((l) => l.includes(' REJ_BAD_REQ ')).length, 3);
});

test('a compile job releases everything when the compiler fails or is killed by a signal', async (t) => {
  const rig = await startRig(t);
  for (const version of [1, 2]) {
    const failed = await connect(rig, encodeRequest(version, compileArgs('failcc'), SOURCE)).answer;
    assert.equal(failed?.status, 3 << 8);
    assert.equal(failed?.stderr.toString(), 't.c:1: error: nope\n');
    await assertReleased(rig, await pidsOf(rig, 'failcc'));
    const killed = await connect(rig, encodeRequest(version, compileArgs('killcc'), SOURCE)).answer;
    assert.equal(killed?.status, 9);
    await assertReleased(rig, await pidsOf(rig, 'killcc'));
  }
  assert.equal(summaries(rig).filter((l) => / COMPILE_ERROR exit:3 sig:0 /.test(l)).length, 2);
  assert.equal(summaries(rig).filter((l) => / COMPILE_ERROR exit:0 sig:9 /.test(l)).length, 2);
});

test('a compile job releases everything when its client leaves mid-compile, in every protocol', async (t) => {
  const rig = await startRig(t);
  for (const bytes of [encodeRequest(1, compileArgs('slowcc'), SOURCE), encodeRequest(2, compileArgs('slowcc'), SOURCE), await pumpRequest(rig, 'slowcc')]) {
    const { socket, answer } = connect(rig, bytes);
    const pids = await pidsOf(rig, 'slowcc');
    socket.destroy();
    assert.equal(await answer, undefined);
    await assertReleased(rig, pids);
  }
  assert.equal(summaries(rig).filter((l) => / CLI_DISCONN exit:107 sig:0 core:0 ret:107 /.test(l)).length, 3);
});

test('a compile job releases everything when its client leaves while it waits for a slot', async (t) => {
  const rig = await startRig(t, { jobs: 1 });
  const first = connect(rig, encodeRequest(1, compileArgs('slowcc'), SOURCE));
  const pids = await pidsOf(rig, 'slowcc');
  // The second job's files were made when its ARGV arrived: they must go with it.
  const second = connect(rig, encodeRequest(2, compileArgs('gcc'), SOURCE));
  await waitUntil(() => rig.slots.waiting === 1 || undefined, WAIT_MS, () => 'the second job to queue');
  assert.notDeepEqual(await fs.readdir(rig.tmp), []);
  second.socket.destroy();
  assert.equal(await second.answer, undefined);
  await waitUntil(() => rig.slots.waiting === 0 || undefined, WAIT_MS, () => 'the second job to leave the queue');
  await waitUntil(() => rig.lines.some((l) => l.includes('client disconnected while waiting for a job slot')) || undefined, WAIT_MS, () => 'the summary of the job that left');
  assert.equal(rig.slots.busy, 1, 'the first job still compiles');
  first.socket.destroy();
  await first.answer;
  await assertReleased(rig, pids);
});

test('a compile job releases everything when it outlives --job-lifetime', async (t) => {
  const rig = await startRig(t, { lifetimeMs: 300 });
  for (const version of [1, 2]) {
    const answer = await connect(rig, encodeRequest(version, compileArgs('slowcc'), SOURCE)).answer;
    assert.equal(answer?.status, EXIT.TIMEOUT << 8);
    assert.match(answer?.stderr.toString() ?? '', /Compilation takes too long, timeout\./);
    await assertReleased(rig, await pidsOf(rig, 'slowcc'));
  }
  assert.equal(summaries(rig).filter((l) => / COMPILE_TIMEOUT exit:118 sig:0 core:0 ret:118 /.test(l)).length, 2);
});

test('compile jobs in flight and waiting for a slot are answered and release everything when the daemon stops', async (t) => {
  const rig = await startRig(t, { jobs: 1 });
  const running = connect(rig, encodeRequest(1, compileArgs('gatecc'), SOURCE));
  const pids = await pidsOf(rig, 'gatecc');
  const waiting = connect(rig, encodeRequest(2, compileArgs('gcc'), SOURCE));
  await waitUntil(() => rig.slots.waiting === 1 || undefined, WAIT_MS, () => 'the second job to queue');
  // What runService's stop does: close the listeners, then drain the pool.
  rig.server.close();
  const drained = rig.pool.drain(30_000);
  await fs.writeFile(path.join(rig.pids, 'go'), '');
  assert.equal(await drained, true);
  const [first, second] = await Promise.all([running.answer, waiting.answer]);
  assert.equal(first?.status, 0);
  assert.equal(first?.object.toString(), 'obj');
  assert.equal(second?.status, 0);
  await assertReleased(rig, pids);
  assert.equal(summaries(rig).filter((l) => l.includes(' COMPILE_OK ')).length, 2);
});

test('a compile job kills its compiler when the daemon exits before the job ends (a drain that timed out)', async (t) => {
  const rig = await startRig(t);
  // A process of its own runs one job on slowcc and exits once the compiler has started, as
  // distccd does when its drain times out.
  const script = `
    const { CompileJob } = require(${JSON.stringify(path.resolve(__dirname, '../../src/compile/compile_job.js'))});
    const { JobSlots } = require(${JSON.stringify(path.resolve(__dirname, '../../src/compile/job_slots.js'))});
    const fs = require('node:fs');
    const quiet = { log() {}, notice() {}, warning() {}, info() {}, debug() {} };
    const settings = { tmpDir: ${JSON.stringify(rig.tmp)}, nice: 0, lifetimeMs: 0, saveTemps: false, pid: process.pid,
      env: { PATH: ${JSON.stringify(`${path.join(rig.root, 'bin')}:/usr/bin:/bin`)}, PIDS: ${JSON.stringify(rig.pids)} },
      policy: { masqueradeDir: ${JSON.stringify(path.join(rig.root, 'bin'))} } };
    const job = new CompileJob({ log: quiet, job: settings, slots: new JobSlots(1) }, { conn: 1, peer: 'test' });
    const argv = ['slowcc', '-c', 't.c', '-o', 't.o'];
    job.heardArgv(1, argv);
    void job.run({ version: 1, protocol: 1, argv, doti: Buffer.from('int x;') });
    const started = setInterval(() => { if (fs.existsSync(${JSON.stringify(path.join(rig.pids, 'slowcc'))})) process.exit(7); }, 10);
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 7);
  const pids = await pidsOf(rig, 'slowcc');
  await waitUntil(() => pids.every((pid) => !isAlive(pid)) || undefined, WAIT_MS, () => 'the compiler and its children to die');
});

/** A job service with no log output and `slots`; its jobs never reach a compiler in these tests. */
function bareService(slots: JobSlots): JobService {
  const log = createLogger('test');
  log.setSinks([]);
  return { log, slots, job: { tmpDir: '/nonexistent', nice: 0, lifetimeMs: 0, saveTemps: false, pid: process.pid, env: {}, policy: {} } as unknown as JobService['job'] };
}

test('a compile job hands out an already aborted signal when it is first asked for after the client went', () => {
  const job = new CompileJob(bareService(new JobSlots(1)), { conn: 1, peer: 'test' });
  assert.equal(job.isGone, false);
  job.clientGone();
  assert.equal(job.isGone, true);
  assert.equal(job.signal.aborted, true);
  assert.match(String((job.signal.reason as Error).message), /client closed the connection/);
});

test('a compile job waiting for a slot leaves the queue when its client goes', async () => {
  const slots = new JobSlots(1);
  const release = await slots.acquire();
  const job = new CompileJob(bareService(slots), { conn: 1, peer: 'test' });
  const outcome = job.run({ version: 1, protocol: 1, argv: ['cc', '-c', 't.c', '-o', 't.o'], doti: Buffer.from('int x;') });
  await waitUntil(() => slots.waiting === 1 || undefined, WAIT_MS, () => 'the job to queue for the slot');
  job.clientGone();
  assert.equal((await outcome).result, 'CLI_DISCONN');
  assert.equal(slots.waiting, 0);
  release();
  assert.equal(slots.busy, 0, 'the job that left never took the slot');
  await job.end();
});
