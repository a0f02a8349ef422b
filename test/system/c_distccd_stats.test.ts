import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DistccStats, renderStatsPage } from '../../src/compile/stats';
import { createHostReader } from '../../src/compile/host_load';
import { fetchStatsPage, startCDistccd } from '../support/distccd_harness';

/** Field names with each value reduced to its format class. */
function shape(page: string): string[] {
  return page.split('\n').map((line) => line
    .replace(/ -?\d+\.\d\d$/, ' F')
    .replace(/ -?\d+ MB$/, ' MB')
    .replace(/ -?\d+$/, ' N')
    .replace(/^(dcc_max_RSS_name|dcc_longest_job|dcc_longest_job_compiler) .*$/, '$1 S'));
}

test('renderStatsPage has the shape of the page Debian C distccd serves when both run on this host', async (t) => {
  const { statsPort } = await startCDistccd(t, { stats: true });
  const theirs = await fetchStatsPage(statsPort);
  const ours = renderStatsPage(new DistccStats({ maxKids: 4 }).snapshot(), await createHostReader()());
  assert.deepEqual(shape(ours).filter((l) => !l.startsWith('dcc_free_mem ')), shape(theirs));
  assert.ok(theirs.startsWith('HTTP/1.0 200 OK\nContent-Type: text/plain\nConnection: close\n\nargv /distccd\n<distccstats>\n'));
});
