/**
 * A small Prometheus registry (text exposition format 0.0.4) for Keyhold's processes: counters, gauges and
 * histograms with labels. Label values are operation names, routes, status codes and hashes: never key material,
 * plaintext, ciphertext, tokens or key names chosen by callers.
 *
 * On a hot path, resolve a series once (`counter.labels({...})`) and keep it: `inc()` and `observe()` on a series
 * do no string work.
 */
export type Labels = Readonly<Record<string, string>>;

/** Latency buckets (seconds) from half a millisecond to five seconds. */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const escapeLabelValue = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** `{a="1",b="2"}`, or nothing without labels. */
export function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export interface Metric {
  readonly name: string;
  render(): string[];
}

const header = (name: string, help: string, type: string) => [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];

export interface CounterSeries {
  inc(by?: number): void;
  readonly value: number;
}

export class Counter implements Metric {
  private readonly series = new Map<string, { labels: Labels; value: number }>();

  /** `collect`: a total the process keeps itself (its CPU time), read at scrape time instead of the series. */
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect?: () => number,
  ) {}

  /** The series for `labels`, created at zero on first use. */
  labels(labels: Labels = {}): CounterSeries {
    const id = labelText(labels);
    let entry = this.series.get(id);
    if (!entry) {
      entry = { labels, value: 0 };
      this.series.set(id, entry);
    }
    const resolved = entry;
    return {
      inc: (by = 1) => {
        resolved.value += by;
      },
      get value() {
        return resolved.value;
      },
    };
  }

  inc(labels: Labels = {}, by = 1): void {
    this.labels(labels).inc(by);
  }

  get(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.value ?? 0;
  }

  render(): string[] {
    const out = header(this.name, this.help, 'counter');
    if (this.collect) return [...out, `${this.name} ${this.collect()}`];
    for (const { labels, value } of this.series.values()) out.push(`${this.name}${labelText(labels)} ${value}`);
    return out;
  }
}

/**
 * A value set by its owner (`set`), or read at scrape time (`collect`): what the process already knows, such as
 * the queue depth or whether it is sealed, is read when scraped rather than kept up to date on every change.
 */
export class Gauge implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect?: () => number | Array<[Labels, number]>,
  ) {}

  set(labels: Labels, value: number): void {
    this.values.set(labelText(labels), { labels, value });
  }

  /** Drops every series set so far (an info metric whose labels changed). */
  reset(): void {
    this.values.clear();
  }

  render(): string[] {
    const out = header(this.name, this.help, 'gauge');
    const collected = this.collect?.();
    const series = collected === undefined ? [...this.values.values()].map(({ labels, value }) => [labels, value] as const) : typeof collected === 'number' ? [[{}, collected] as const] : collected;
    for (const [labels, value] of series) out.push(`${this.name}${labelText(labels)} ${value}`);
    return out;
  }
}

export interface HistogramSeries {
  observe(seconds: number): void;
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {}

  labels(labels: Labels = {}): HistogramSeries {
    const id = labelText(labels);
    let entry = this.series.get(id);
    if (!entry) {
      entry = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(id, entry);
    }
    const resolved = entry;
    const buckets = this.buckets;
    return {
      observe(seconds: number) {
        // Counts per bucket, not cumulative: the cumulative form is made at render time.
        let index = 0;
        while (index < buckets.length && seconds > buckets[index]) index += 1;
        if (index < buckets.length) resolved.counts[index] += 1;
        resolved.sum += seconds;
        resolved.count += 1;
      },
    };
  }

  observe(labels: Labels, seconds: number): void {
    this.labels(labels).observe(seconds);
  }

  render(): string[] {
    const out = header(this.name, this.help, 'histogram');
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, index) => {
        cumulative += counts[index];
        out.push(`${this.name}_bucket${labelText({ ...labels, le: String(le) })} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`);
      out.push(`${this.name}_sum${labelText(labels)} ${sum}`);
      out.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return out;
  }
}

/** The metrics of one process, rendered in registration order. */
export class MetricsRegistry {
  private readonly metrics: Metric[] = [];

  register<T extends Metric>(metric: T): T {
    if (this.metrics.some((existing) => existing.name === metric.name)) throw new Error(`metric ${metric.name} is registered twice`);
    this.metrics.push(metric);
    return metric;
  }

  render(): string {
    return `${this.metrics.flatMap((metric) => metric.render()).join('\n')}\n`;
  }
}
