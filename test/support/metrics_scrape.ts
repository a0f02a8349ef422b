// Reading our metrics listeners in tests: the listener's address from the "metrics listening
// on=" log line, a GET of /metrics, /status.json or /, the exposition text parsed into samples,
// and Debian's promtool judging that text.

import http from 'node:http';
import { spawnSync } from 'node:child_process';

/** The address of the "metrics listening on=HOST:PORT" line in `log`. */
export function metricsAddressIn(log: string): string | undefined {
  return /metrics listening on=(\S+)/.exec(log)?.[1];
}

export function httpGet(address: string, urlPath: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://${address}${urlPath}`, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      })
      .once('error', reject);
  });
}

export async function scrape(address: string): Promise<string> {
  const r = await httpGet(address, '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.body}`);
  return r.body;
}

/** Samples by `name{a="x",b="y"}` with the labels in name order (no braces without labels). */
export function parseSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not an exposition line: ${line}`);
    const labels = m[2] === undefined ? [] : [...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    samples.set(labels.length === 0 ? m[1]! : `${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return samples;
}

/** One sample's value (labels in any order), or undefined when the series is absent. */
export function sample(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort();
  return samples.get(pairs.length === 0 ? name : `${name}{${pairs.join(',')}}`);
}

/** `promtool check metrics` on `text`: its exit status and what it said. */
export function promtoolCheck(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: r.stdout + r.stderr };
}

/** Scrapes `address` until `holds` says yes of the samples (state that sends no event: a
 * reconnect, a timer's write), failing after `ms` with the last scrape. */
export async function scrapeUntil(address: string, what: string, holds: (samples: Map<string, number>) => boolean, ms = 20_000): Promise<{ text: string; samples: Map<string, number> }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await scrape(address);
    const samples = parseSamples(text);
    if (holds(samples)) return { text, samples };
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last scrape:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
