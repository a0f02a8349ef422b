// The job message the daemon sends its sandbox host (sandbox_host.ts encodeJob): NUL-separated
// strings that the host (sandbox_host.c) splits on NUL, so no string may hold a NUL of its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeJob, type HostRequest } from '../../../src/compile/sandbox/sandbox_host';

const limits = { as: 1, cpu: 2, fsize: 3, nproc: 4 };
const strings = fc.array(fc.string({ unit: 'binary' }), { maxLength: 6 });

test('encodeJob gives the host each string in order when none holds a NUL, and refuses any that does', () => {
  fc.assert(fc.property(strings, strings, strings, fc.option(fc.integer({ min: -20, max: 19 }), { nil: undefined }), (env, options, argv, priority) => {
    const request: HostRequest = { priority, limits, env, options, argv };
    const fields = [priority === undefined ? '' : String(priority), '1', '2', '3', '4', String(env.length), ...env, ...options, '--', ...argv];
    if (fields.some((f) => f.includes('\0'))) {
      assert.throws(() => encodeJob(request), { errno: 22 });
      return;
    }
    const text = encodeJob(request).toString();
    assert.ok(text.endsWith('\0'));
    assert.deepEqual(text.slice(0, -1).split('\0'), fields);
  }), { numRuns: 500 });
  assert.throws(() => encodeJob({ limits, env: [], options: [], argv: ['gcc', '--ro-bind\0/etc\0/etc'] }), /a NUL in a sandbox host job's string/);
});
