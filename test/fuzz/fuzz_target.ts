// What every fuzz target gives the runner (test/fuzz/fuzz_main.ts, `npm run fuzz`): a name, and a
// run that executes a bounded number of cases (and stops early at a time bound) and reports what
// it found. A distcc fuzzer is added by writing one more FuzzTarget and listing it in targets.ts.

export interface FuzzOptions {
  /** Cases to run at most. */
  readonly cases: number;
  readonly seed: number;
  /** Index of the first case (to replay case K alone: from K, cases 1). */
  readonly from: number;
  /** Stop (and report what ran) after this long. */
  readonly timeLimitMs: number;
  /** Progress line sink (the runner prints them; tests pass nothing). */
  readonly progress?: (line: string) => void;
}

export interface Finding {
  readonly kind: 'crash' | 'hang' | 'violation';
  readonly index: number;
  readonly detail: string;
  /** The input, hex (truncated to 4096 bytes). */
  readonly input: string;
}

export interface FuzzSummary {
  readonly target: string;
  readonly cases: number;
  readonly crashes: number;
  readonly hangs: number;
  readonly violations: number;
  /** Peak resident memory of what was fuzzed (this process, or the server's process), bytes. */
  readonly peakRssBytes: number;
  readonly seconds: number;
  /** The first findings (at most 20). */
  readonly findings: readonly Finding[];
  /** Target-specific figures (good-client answers, connections, drops...). */
  readonly extra: Readonly<Record<string, number | string>>;
}

export interface FuzzTarget {
  readonly name: string;
  readonly describe: string;
  run(options: FuzzOptions): Promise<FuzzSummary>;
}

export const MAX_FINDINGS = 20;

export function formatSummary(s: FuzzSummary): string {
  const lines = [
    `fuzz target=${s.target} cases=${s.cases} crashes=${s.crashes} hangs=${s.hangs} violations=${s.violations} ` +
      `peak_rss_mb=${(s.peakRssBytes / 1048576).toFixed(1)} seconds=${s.seconds.toFixed(1)}` +
      Object.entries(s.extra)
        .map(([k, v]) => ` ${k}=${v}`)
        .join(''),
  ];
  for (const f of s.findings) lines.push(`finding kind=${f.kind} case=${f.index} input=${f.input.length > 512 ? `${f.input.slice(0, 512)}...(${f.input.length / 2} bytes)` : f.input}\n  ${f.detail.split('\n').join('\n  ')}`);
  return lines.join('\n');
}

/** One in-process case: a pass carrying what the target tallies, or a finding. */
export type CaseOutcome<Pass extends object> =
  | ({ readonly kind: 'pass' } & Pass)
  | { readonly kind: 'crash' | 'hang' | 'violation'; readonly detail: string; readonly input: Uint8Array };

/**
 * The case loop of an in-process target (a codec): runs cases from options.from on, counts the
 * findings and keeps the first MAX_FINDINGS, samples this process's RSS, stops at the time bound,
 * and every 1024 cases lets timers (the runner's own) fire and reports progress.
 */
export async function runInProcessCases<Pass extends object>(
  target: string,
  options: FuzzOptions,
  run: { readonly runCase: (index: number) => CaseOutcome<Pass>; readonly tally: (pass: Pass) => void; readonly extra: () => FuzzSummary['extra'] },
): Promise<FuzzSummary> {
  const started = Date.now();
  const counts = { crash: 0, hang: 0, violation: 0 };
  let peak = process.memoryUsage.rss();
  const findings: Finding[] = [];
  let n = 0;
  for (; n < options.cases; n++) {
    const index = options.from + n;
    const outcome = run.runCase(index);
    if (outcome.kind === 'pass') run.tally(outcome);
    else {
      counts[outcome.kind]++;
      if (findings.length < MAX_FINDINGS) findings.push({ kind: outcome.kind, index, detail: outcome.detail, input: Buffer.from(outcome.input.subarray(0, 4096)).toString('hex') });
    }
    if ((n & 1023) === 1023) {
      peak = Math.max(peak, process.memoryUsage.rss());
      if (Date.now() - started > options.timeLimitMs) {
        n++;
        break;
      }
      if ((n & 0xffff) === 0xffff) options.progress?.(`${target}: ${n + 1} cases, ${counts.crash + counts.hang + counts.violation} findings, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  peak = Math.max(peak, process.memoryUsage.rss());
  return { target, cases: n, crashes: counts.crash, hangs: counts.hang, violations: counts.violation, peakRssBytes: peak, seconds: (Date.now() - started) / 1000, findings, extra: run.extra() };
}
