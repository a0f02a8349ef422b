// The few metric kinds the daemons count with, registered in a prom-client Registry (which does
// the exposition format, the default process metrics and the registry per daemon). prom-client's
// own Counter and Histogram hash their label set on every inc() and observe(); a dc_server
// answers a request in a few microseconds, so here a label set is bound once (child()) and each
// count is a field increment, read only when someone scrapes.

import type { Registry } from 'prom-client';

export type Labels = Readonly<Record<string, string>>;
interface Sample {
  readonly labels: Labels;
  readonly value: number;
  readonly metricName?: string;
}

/** One bound label set of a counter or gauge: add to `value` (a gauge may also set it). */
export interface CountSlot {
  value: number;
}

/** What prom-client's Registry needs of a metric: a name, a help text, a type and its samples. */
abstract class Instrument {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator = 'sum';
  constructor(registry: Registry, name: string, help: string) {
    this.name = name;
    this.help = help;
    registry.registerMetric(this as never);
  }
  abstract get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] };
  reset(): void {}
}

/** The map key of a label set: its pairs in name order (a series may carry labels others lack). */
function keyOf(labels: Labels): string {
  return Object.keys(labels).sort().map((k) => `${k}\u0000${labels[k]}`).join('\u0001');
}

/** A counter or gauge whose label sets are bound up front (or on first use, off the hot path). */
export class CountVec extends Instrument {
  readonly type: 'counter' | 'gauge';
  readonly #slots = new Map<string, { labels: Labels; slot: CountSlot }>();

  constructor(registry: Registry, spec: { name: string; help: string; type: 'counter' | 'gauge' }) {
    super(registry, spec.name, spec.help);
    this.type = spec.type;
  }

  /** The slot of one label set, created at 0 (and then shown at 0, so rates start from a sample). */
  child(labels: Labels = {}): CountSlot {
    const key = keyOf(labels);
    let entry = this.#slots.get(key);
    if (entry === undefined) {
      entry = { labels: { ...labels }, slot: { value: 0 } };
      this.#slots.set(key, entry);
    }
    return entry.slot;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.#slots.values()].map(({ labels, slot }) => ({ labels, value: slot.value })) };
  }
}

/** A value read when scraped (a store's size, a state): no counting on any path. */
export class ReadValue extends Instrument {
  readonly type: 'counter' | 'gauge';
  readonly #read: () => number | readonly Sample[];

  constructor(registry: Registry, spec: { name: string; help: string; type: 'counter' | 'gauge'; read: () => number | readonly Sample[] }) {
    super(registry, spec.name, spec.help);
    this.type = spec.type;
    this.#read = spec.read;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const read = this.#read();
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: typeof read === 'number' ? [{ labels: {}, value: read }] : [...read] };
  }
}

/** One bound label set of a histogram. */
export interface HistogramSlot {
  observe(value: number): void;
}

class Buckets implements HistogramSlot {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: Float64Array;
  constructor(bounds: Float64Array) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class HistogramVec extends Instrument {
  readonly type = 'histogram';
  readonly #bounds: Float64Array;
  readonly #slots = new Map<string, { labels: Labels; buckets: Buckets }>();

  constructor(registry: Registry, spec: { name: string; help: string; buckets: readonly number[] }) {
    super(registry, spec.name, spec.help);
    this.#bounds = Float64Array.from([...spec.buckets].sort((a, b) => a - b));
  }

  child(labels: Labels = {}): HistogramSlot {
    const key = keyOf(labels);
    let entry = this.#slots.get(key);
    if (entry === undefined) {
      entry = { labels: { ...labels }, buckets: new Buckets(this.#bounds) };
      this.#slots.set(key, entry);
    }
    return entry.buckets;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const values: Sample[] = [];
    for (const { labels, buckets } of this.#slots.values()) {
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += buckets.counts[i]!;
        values.push({ labels: { ...labels, le: String(bound) }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: buckets.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: buckets.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: buckets.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** Seconds buckets from 100 µs to 5 min: a cache answer sits low, a compile high. */
export const SECONDS_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
