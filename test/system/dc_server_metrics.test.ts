// dc_server's Prometheus metrics after a scripted sequence of real requests: operations by
// command and result, sessions and bytes stored, added and removed, equal to what a model of
// the cache says the sequence must have done; promtool accepts the output, and the status data
// agrees.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Program, dialOf } from './cache_harness';
import { CacheClient } from '../../src/cache/client';
import { Status } from '../../src/cache/wire/constants';
import { ANSWER_TIMING_SAMPLE } from '../../src/cache/engine';
import { httpGet, metricsAddressIn, parseSamples, promtoolCheck, sample, scrape } from '../support/metrics_scrape';

type Step = { op: 'add'; id: number; size: number; timeoutMs: number } | { op: 'get' | 'remove' | 'have'; id: number };

/** Ids 0..7, so steps meet each other's sessions; one timeout in 10 is out of range (rejected). */
const STEP: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), id: fc.nat(7), size: fc.integer({ min: 1, max: 300 }), timeoutMs: fc.oneof({ weight: 9, arbitrary: fc.constant(600_000) }, { weight: 1, arbitrary: fc.constant(604_800_001) }) }),
  fc.record({ op: fc.constantFrom('get' as const, 'remove' as const, 'have' as const), id: fc.nat(7) }),
);

test('dc_server metrics equal the model\'s counts when a scripted sequence of requests is served', async (t) => {
  const server = new Program('dc_server', ['-listen', 'IP:127.0.0.1:0', '-metrics', '127.0.0.1:0']);
  t.after(() => server.stop());
  const [address] = await server.listening();
  await server.waitUntil('the metrics line', () => metricsAddressIn(server.stderr) !== undefined);
  const metrics = metricsAddressIn(server.stderr)!;
  const client = await CacheClient.connect(dialOf(address!) as { host: string; port: number });
  t.after(() => client.close());

  const steps = fc.sample(fc.array(STEP, { minLength: 200, maxLength: 200 }), { seed: 19, numRuns: 1 })[0]!;
  const model = new Map<number, number>(); // id -> data size
  const counts = new Map<string, number>();
  const count = (command: string, result: string): void => void counts.set(`${command} ${result}`, (counts.get(`${command} ${result}`) ?? 0) + 1);
  let added = 0;
  let removed = 0;
  for (const step of steps) {
    const id = Buffer.from(`session-${step.id}`);
    switch (step.op) {
      case 'add': {
        const status = await client.add(id, Buffer.alloc(step.size, step.id), step.timeoutMs);
        const expected = step.timeoutMs > 604_800_000 ? Status.ADD_TIMEOUT_RANGE : model.has(step.id) ? Status.ADD_MATCHING_SESSION : Status.OK;
        assert.equal(status, expected);
        if (expected === Status.OK) {
          model.set(step.id, step.size);
          added++;
        }
        count('add', expected === Status.OK ? 'ok' : expected === Status.ADD_MATCHING_SESSION ? 'exists' : 'rejected');
        break;
      }
      case 'get':
        assert.equal((await client.get(id)) !== null, model.has(step.id));
        count('get', model.has(step.id) ? 'hit' : 'miss');
        break;
      case 'remove':
        assert.equal(await client.remove(id), model.has(step.id));
        count('remove', model.delete(step.id) ? (removed++, 'ok') : 'notok');
        break;
      case 'have':
        assert.equal(await client.have(id), model.has(step.id));
        count('have', model.has(step.id) ? 'ok' : 'notok');
        break;
    }
  }

  const text = await scrape(metrics);
  const samples = parseSamples(text);
  for (const [command, results] of [['add', ['ok', 'exists', 'rejected', 'closed']], ['get', ['hit', 'miss']], ['remove', ['ok', 'notok']], ['have', ['ok', 'notok']]] as const) {
    for (const result of results) {
      assert.equal(sample(samples, 'dc_server_operations_total', { command, result }), counts.get(`${command} ${result}`) ?? 0, `${command} ${result}`);
    }
  }
  // One answer in ANSWER_TIMING_SAMPLE is timed: the first, the ninth...
  const timed = ['add', 'get', 'remove', 'have'].reduce((n, command) => n + sample(samples, 'dc_server_answer_duration_seconds_count', { command })!, 0);
  assert.equal(timed, Math.ceil(steps.length / ANSWER_TIMING_SAMPLE));
  assert.equal(sample(samples, 'dc_server_sessions'), model.size);
  assert.equal(sample(samples, 'dc_server_sessions_added_total'), added);
  assert.equal(sample(samples, 'dc_server_sessions_removed_total'), removed);
  assert.equal(sample(samples, 'dc_server_sessions_evicted_total'), 0);
  assert.equal(sample(samples, 'dc_server_sessions_expired_total'), 0);
  assert.ok(sample(samples, 'dc_server_session_bytes')! >= [...model.values()].reduce((a, b) => a + b, 0), 'at least the data is counted');
  assert.equal(sample(samples, 'dc_server_connections_open'), 1);
  const checked = promtoolCheck(text);
  assert.equal(checked.status, 0, checked.output);
  assert.equal(checked.output.trim(), '');

  const status = JSON.parse((await httpGet(metrics, '/status.json')).body) as { sessions: number; operations: number; connections: number; tiles: unknown[] };
  assert.equal(status.sessions, model.size);
  assert.equal(status.operations, steps.length);
  assert.equal(status.connections, 1);
});
