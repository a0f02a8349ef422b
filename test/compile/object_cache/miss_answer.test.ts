// A job that misses answers with the parts of the entry it stores, compressed once (protocols 2
// and 3 send their bodies LZO-compressed; the entry holds them so): the answer is not compressed
// a second time, and a later hit sends the same bytes. Driven through CompileJob with the real
// gcc and a disk store, the protocol-1 job as the one that keeps its parts plain.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CompileJob, type JobService } from '../../../src/compile/compile_job';
import { JobSlots } from '../../../src/compile/job_slots';
import { DiskStore } from '../../../src/compile/object_cache/disk_store';
import { isIntactEntry } from '../../../src/compile/object_cache/entry_codec';
import { ObjectCache } from '../../../src/compile/object_cache/object_cache';
import type { JobOutcome } from '../../../src/compile/job';
import { compressLzo, decompressLzo } from '../../../src/compile/wire/lzo';
import type { CompileRequest } from '../../../src/compile/wire/request';
import { encodeResponse } from '../../../src/compile/wire/response';
import { createLogger } from '../../../src/log/index';
import { tempDir } from '../../support/temp_dir';

const SOURCE = 'int f(void) { int unused = 1; return 42; }\n';
const ARGV = ['gcc', '-Wall', '-O2', '-c', 't.c', '-o', 't.o'];

async function service(t: TestContext): Promise<{ readonly service: JobService; readonly doti: Buffer }> {
  const root = tempDir(t, 'distkit-objcache-miss-');
  const [tmp, bin, src] = ['tmp', 'bin', 'src'].map((d) => path.join(root, d)) as [string, string, string];
  await Promise.all([tmp, bin, src].map((d) => fs.mkdir(d)));
  await fs.symlink('/usr/bin/gcc', path.join(bin, 'gcc'));
  await fs.writeFile(path.join(src, 't.c'), SOURCE);
  const log = createLogger('t', { level: 'emerg' });
  const store = await DiskStore.open({ dir: path.join(root, 'cache'), maxBytes: 1 << 24, validate: isIntactEntry }, log);
  const cache = new ObjectCache([store], { log, maxEntryBytes: 1 << 24 });
  t.after(() => cache.close());
  const job = {
    tmpDir: tmp, nice: 0, lifetimeMs: 0, saveTemps: false,
    env: Object.freeze({ PATH: `${bin}:/usr/bin:/bin` }), policy: { masqueradeDir: bin }, pid: process.pid,
  };
  return { service: { log, job, slots: new JobSlots(1), cache }, doti: execFileSync('gcc', ['-E', 't.c'], { cwd: src }) };
}

async function runJob(service: JobService, request: CompileRequest): Promise<JobOutcome> {
  const job = new CompileJob(service, { conn: 1, peer: 'test' });
  job.heardArgv(request.version, request.argv);
  const outcome = await job.run(request);
  await job.end(outcome); // the summary waits for the store: the next job finds the entry
  return outcome;
}

test('a job that misses answers with its entry\'s compressed parts, compressed once, when the job comes in protocol 2', async (t) => {
  const { service: s, doti } = await service(t);
  const request: CompileRequest = { version: 2, protocol: 2, argv: ARGV, doti: compressLzo(doti) };
  const miss = await runJob(s, request);
  const hit = await runJob(s, request);
  assert.equal(s.cache!.stats.misses, 1);
  assert.equal(s.cache!.stats.hits, 1);
  assert.equal(miss.response?.status, 0);
  assert.equal(miss.response.compressed, true, 'the miss sends its parts as compressed for the entry, not compressed again');
  assert.match(decompressLzo(miss.response.stderr).toString(), /unused/, 'the warning, compressed');
  assert.deepEqual(encodeResponse(miss.response), encodeResponse(hit.response!), 'the hit answers the miss\'s bytes');
});

test('a job that misses answers its parts plain when the job comes in protocol 1', async (t) => {
  const { service: s, doti } = await service(t);
  const request: CompileRequest = { version: 1, protocol: 1, argv: ARGV, doti };
  const miss = await runJob(s, request);
  const hit = await runJob(s, request);
  assert.equal(miss.response?.status, 0);
  assert.notEqual(miss.response.compressed, true);
  assert.match(miss.response.stderr.toString(), /unused/);
  assert.deepEqual(encodeResponse(miss.response), encodeResponse(hit.response!));
});
