/**
 * A histogram as plain data, for the small stats modules keep about themselves (batch sizes,
 * latencies). Whoever reports them (the node's /metrics) reads a snapshot; nothing here knows
 * about any exposition format.
 */

export interface HistogramSnapshot {
  /** upper bounds, ascending (the +Inf bucket is implied) */
  bounds: readonly number[];
  /** observations per bucket, NOT cumulative; one more entry than bounds (the +Inf bucket) */
  counts: readonly number[];
  sum: number;
  count: number;
}

export class Histogram {
  readonly bounds: readonly number[];
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(bounds: readonly number[]) {
    if (bounds.length === 0) throw new RangeError("histogram: at least one bucket bound is needed");
    for (let i = 0; i < bounds.length; i++) {
      const b = bounds[i] as number;
      if (!Number.isFinite(b)) throw new RangeError(`histogram: bucket bound ${b} is not a finite number`);
      if (i > 0 && b <= (bounds[i - 1] as number)) throw new RangeError("histogram: bucket bounds must be strictly ascending");
    }
    this.bounds = [...bounds];
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    if (Number.isNaN(value)) return;
    let i = 0;
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

/** Bounds start, start*factor, ... (count of them). */
export function exponentialBounds(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}
