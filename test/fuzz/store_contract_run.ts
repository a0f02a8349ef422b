// `npm run fuzz -- --target store`: the SessionStore model test
// (test/cache/stores/session_store_contract.test.ts) at fuzzing scale. One case is 10 random
// operations per store, so the default 100,000 cases are 10^6 operations against each store, ten
// times what `npm test` runs. The test file runs in a child process with the operation count and
// the seed in its environment; a failing property (printed with fast-check's shrunk
// counterexample and seed) is one violation.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { FuzzOptions, FuzzSummary, FuzzTarget } from './fuzz_target';

const OPERATIONS_PER_CASE = 10;

function peakRssOf(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

async function runStoreContract(o: FuzzOptions): Promise<FuzzSummary> {
  const started = Date.now();
  const operations = o.cases * OPERATIONS_PER_CASE;
  const file = path.join(__dirname, '../cache/stores/session_store_contract.test.js');
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, STORE_CONTRACT_OPS: String(operations), STORE_CONTRACT_SEED: String(o.seed) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, peakRssOf(child.pid!))), 200);
  const killer = setTimeout(() => child.kill('SIGKILL'), o.timeLimitMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  clearTimeout(killer);
  const failed = [...output.matchAll(/^not ok \d+ - (.*)$/gm)].map((m) => m[1]!);
  const hang = code === null;
  const violations = hang ? 0 : failed.length + (code !== 0 && failed.length === 0 ? 1 : 0);
  o.progress?.(`store: ${operations} operations per store, exit ${code}`);
  return {
    target: 'store',
    cases: o.cases,
    crashes: 0,
    hangs: hang ? 1 : 0,
    violations,
    peakRssBytes: peak,
    seconds: (Date.now() - started) / 1000,
    findings: hang || violations > 0 ? [{ kind: hang ? 'hang' : 'violation', index: 0, detail: `${failed.join('; ')}\n${output.slice(-4000)}`, input: '' }] : [],
    extra: { operations_per_store: operations, stores_failed: failed.length },
  };
}

export const storeContractTarget: FuzzTarget = {
  name: 'store',
  describe: 'SessionStore model test at scale: every store against the reference model, 10 operations per case',
  run: runStoreContract,
};
