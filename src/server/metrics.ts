/**
 * The node's metrics registry. Modules keep their own small stats as plain data (a Histogram, a
 * tally, a status record); a family registered here is a function that READS such stats at scrape
 * time, so nothing below the server imports metrics code. Other modules (peer sync, audit
 * checkpoints) add their figures the same way: `registry.gauge(name, help, () => samples)`.
 *
 * Label values must be bounded: route patterns, village ids of villages on disk, error codes;
 * never a token, a path from a request or a bundle id.
 */
import { Histogram } from "../core/stats.ts";
import {
  LABEL_NAME_RE,
  METRIC_NAME_RE,
  renderExposition,
  type Family,
  type HistogramSample,
  type Labels,
  type Sample,
} from "./metrics-format.ts";

type Collector =
  | { name: string; help: string; type: "counter" | "gauge"; collect: () => readonly Sample[] }
  | { name: string; help: string; type: "histogram"; collect: () => readonly HistogramSample[] };

export class MetricsRegistry {
  private readonly collectors: Collector[] = [];
  private readonly failures = new Map<string, number>();

  counter(name: string, help: string, collect: () => readonly Sample[]): void {
    if (!name.endsWith("_total")) throw new Error(`metrics: counter ${name} must end in _total`);
    this.register({ name, help, type: "counter", collect });
  }

  gauge(name: string, help: string, collect: () => readonly Sample[]): void {
    this.register({ name, help, type: "gauge", collect });
  }

  histogram(name: string, help: string, collect: () => readonly HistogramSample[]): void {
    this.register({ name, help, type: "histogram", collect });
  }

  names(): string[] {
    return this.collectors.map((c) => c.name);
  }

  /**
   * The exposition text. A family whose stats cannot be read this time is left out and counted
   * in links_metrics_collect_failures_total, so one broken source never hides the others.
   */
  render(): string {
    const families: Family[] = [];
    for (const c of this.collectors) {
      try {
        families.push({ ...c, samples: c.collect() } as Family);
      } catch {
        this.failures.set(c.name, (this.failures.get(c.name) ?? 0) + 1);
      }
    }
    families.push({
      name: "links_metrics_collect_failures_total",
      help: "Scrapes at which a metric family could not be read, by family",
      type: "counter",
      samples: [...this.failures].map(([family, value]) => ({ labels: { family }, value })),
    });
    return renderExposition(families);
  }

  private register(c: Collector): void {
    if (!METRIC_NAME_RE.test(c.name)) throw new Error(`metrics: invalid metric name ${JSON.stringify(c.name)}`);
    if (this.collectors.some((x) => x.name === c.name)) throw new Error(`metrics: ${c.name} is registered twice`);
    this.collectors.push(c);
  }
}

function labelKey(labelNames: readonly string[], labels: Labels): string {
  return JSON.stringify(labelNames.map((n) => labels[n] ?? ""));
}

function checkLabelNames(labelNames: readonly string[]): void {
  for (const n of labelNames) if (!LABEL_NAME_RE.test(n)) throw new Error(`metrics: invalid label name ${JSON.stringify(n)}`);
}

/** Counts by a fixed set of label names, as plain data. */
export class LabeledCounter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(readonly labelNames: readonly string[]) {
    checkLabelNames(labelNames);
  }

  inc(labels: Labels, by = 1): void {
    const key = labelKey(this.labelNames, labels);
    const hit = this.values.get(key);
    if (hit) hit.value += by;
    else this.values.set(key, { labels: Object.fromEntries(this.labelNames.map((n) => [n, labels[n] ?? ""])), value: by });
  }

  samples(): Sample[] {
    return [...this.values.values()].map(({ labels, value }) => ({ labels, value }));
  }
}

/** One histogram per combination of label values. */
export class LabeledHistogram {
  private readonly values = new Map<string, { labels: Labels; histogram: Histogram }>();

  constructor(
    readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    checkLabelNames(labelNames);
  }

  observe(labels: Labels, value: number): void {
    const key = labelKey(this.labelNames, labels);
    let hit = this.values.get(key);
    if (!hit) {
      hit = { labels: Object.fromEntries(this.labelNames.map((n) => [n, labels[n] ?? ""])), histogram: new Histogram(this.bounds) };
      this.values.set(key, hit);
    }
    hit.histogram.observe(value);
  }

  samples(): HistogramSample[] {
    return [...this.values.values()].map(({ labels, histogram }) => ({ labels, histogram: histogram.snapshot() }));
  }
}
