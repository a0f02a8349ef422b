// `npm run fuzz -- [--target NAME[,NAME]] [--cases N] [--seed S] [--from K] [--seconds T]`: runs fuzz
// targets (see targets.ts) and prints, per target, cases run, crashes, hangs, invariant
// violations and peak RSS, then the first findings with the case number that replays each.
// Exit status 1 when anything was found.

import { formatSummary, type FuzzSummary } from './fuzz_target';
import { FUZZ_TARGETS } from './targets';

function usage(): string {
  return [
    'usage: npm run fuzz -- [--target NAME[,NAME...]] [--cases N] [--seed S] [--from K] [--seconds T]',
    '  targets:',
    ...FUZZ_TARGETS.map((t) => `    ${t.name.padEnd(14)} ${t.describe}`),
    '  --cases N    cases per target (default 100000); the live targets count one connection per case',
    '  --seed S     run seed (default: random, printed); --from K: first case index (replay one case)',
    '  --seconds T  stop each target after T seconds (default 3600)',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const opts: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      console.log(usage());
      return 0;
    }
    const m = /^--(target|cases|seed|from|seconds)(?:=(.*))?$/.exec(a);
    if (m === null) {
      console.error(`fuzz: unknown argument "${a}"\n${usage()}`);
      return 2;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) {
      console.error(`fuzz: ${a} needs a value\n${usage()}`);
      return 2;
    }
    opts[m[1]!] = value;
  }
  const number = (key: string, fallback: number): number => {
    const v = opts[key] === undefined ? fallback : Number(opts[key]);
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`--${key} ${opts[key]} is not a non-negative integer`);
    return v;
  };
  const names = (opts.target ?? 'cache').split(',');
  const targets = names.map((name) => {
    const t = FUZZ_TARGETS.find((x) => x.name === name);
    if (t === undefined) throw new RangeError(`unknown fuzz target "${name}": use one of ${FUZZ_TARGETS.map((x) => x.name).join(', ')}`);
    return t;
  });
  const seed = number('seed', Math.floor(Math.random() * 0x7fffffff));
  const cases = number('cases', 100_000);
  const from = number('from', 0);
  const timeLimitMs = number('seconds', 3600) * 1000;
  console.log(`fuzz seed=${seed} cases=${cases} from=${from} targets=${names.join(',')}`);
  const summaries: FuzzSummary[] = [];
  for (const target of targets) {
    const s = await target.run({ cases, seed, from, timeLimitMs, progress: (line) => console.log(line) });
    summaries.push(s);
    console.log(formatSummary(s));
  }
  const found = summaries.reduce((n, s) => n + s.crashes + s.hangs + s.violations, 0);
  console.log(`fuzz done seed=${seed} cases=${summaries.reduce((n, s) => n + s.cases, 0)} findings=${found}`);
  return found === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`fuzz: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
