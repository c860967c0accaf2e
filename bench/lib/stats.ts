/** Latency statistics for benchmarks: exact percentiles over recorded samples. */

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Collects samples (milliseconds) and summarizes them. */
export class Samples {
  values: number[] = [];
  record(ms: number): void {
    this.values.push(ms);
  }
  summary(): Summary {
    const sorted = Float64Array.from(this.values).sort();
    const at = (q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      count: sorted.length,
      mean: sorted.length === 0 ? 0 : sum / sorted.length,
      p50: at(0.5),
      p95: at(0.95),
      p99: at(0.99),
      max: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
    };
  }
}

/** Median of numbers (for ratios across interleaved rounds). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Min and max, for reporting the spread of a ratio. */
export function spread(values: number[]): [number, number] {
  return [Math.min(...values), Math.max(...values)];
}

/** Format a number for tables. */
export function fmt(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return "—";
  return value >= 1000 ? Math.round(value).toLocaleString("en-US") : value.toFixed(digits);
}
