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
