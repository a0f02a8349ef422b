// The npm test size of `npm run load`: 1000 idle connections held open beside an active client
// (the 10,000-connection run with its p99 bound is `npm run load`; speed is not asserted here).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runIdleLoad } from '../load/cache_load';

test('cache server keeps 1000 idle connections open and answers an active client correctly beside them', async () => {
  const r = await runIdleLoad({ idle: 1000, requests: 2000 });
  assert.equal(r.idleOpenAtEnd, 1000, 'the server closed idle connections');
  assert.equal(r.withIdle.requests, 2000);
  assert.ok(r.rssWithIdleBytes > 0);
});
