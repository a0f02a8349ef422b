// What counting costs dc_server's hot path (issue 19, `npm run bench -- metrics`): our dc_server
// without and with `-metrics 127.0.0.1:0`, both holding 50,000 sessions of 150 B, one client on a
// unix socket, GET then ADD, the two servers alternated run by run for `rounds` rounds (`--rounds
// N`, default 7) so drift on a shared machine hits both; prints the median ops/s and server CPU
// µs/op of each and the with/without ratios of the medians.

import { fillAll, measure, startAll, stopAll, type Bench, type Live } from './cache_cells';
import { oursTarget } from './cache_targets';

const SESSIONS = 50_000;
const SIZE = 150;

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function measureMetricsCost(bench: Bench, repo: string, rounds: number): Promise<void> {
  const targets = [oursTarget(repo), oursTarget(repo, { name: 'ours -metrics', extra: ['-metrics', '127.0.0.1:0'] })];
  const lives = await startAll(bench, targets, 'unix', SESSIONS, SIZE);
  try {
    console.log(`memory after fill: ${await fillAll(bench, targets, lives, SESSIONS, SIZE)}`);
    const [plain, counted] = lives as [Live, Live];
    for (const live of lives) await measure(bench, live!, { op: 'GET', clients: 1, ms: Math.ceil(bench.ms / 2), ids: SESSIONS, size: SIZE });
    console.log(`metrics cost: dc_server, unix socket, 1 client, ${SESSIONS} sessions of ${SIZE} B, ${bench.ms} ms per run, ${rounds} alternated rounds`);
    for (const op of ['GET', 'ADD'] as const) {
      const rates = { plain: [] as number[], counted: [] as number[] };
      const cpu = { plain: [] as number[], counted: [] as number[] };
      for (let round = 0; round < rounds; round++) {
        // Alternate which goes first, so neither always follows the other.
        const order = round % 2 === 0 ? (['plain', 'counted'] as const) : (['counted', 'plain'] as const);
        for (const name of order) {
          const live = name === 'plain' ? plain : counted;
          const r = await measure(bench, live, { op, clients: 1, ms: bench.ms, ids: SESSIONS, size: SIZE });
          rates[name].push((r.ops * 1000) / r.ms);
          cpu[name].push(r.serverUs);
        }
      }
      const p = median(rates.plain);
      const c = median(rates.counted);
      const pCpu = median(cpu.plain);
      const cCpu = median(cpu.counted);
      const runs = (xs: readonly number[]): string => xs.map((x) => x.toFixed(0)).join(' ');
      console.log(
        `${op.padEnd(4)} without -metrics ${p.toFixed(0).padStart(7)} ops/s ${pCpu.toFixed(1)} µs/op   with -metrics ${c.toFixed(0).padStart(7)} ops/s ${cCpu.toFixed(1)} µs/op   with/without: ops/s ${(c / p).toFixed(3)}, CPU/op ${(cCpu / pCpu).toFixed(3)}   (ops/s runs: ${runs(rates.plain)} | ${runs(rates.counted)})`,
      );
    }
  } finally {
    await stopAll(lives);
  }
}
