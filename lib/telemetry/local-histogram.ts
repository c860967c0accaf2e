/**
 * Histograms aggregated inside pgpilot, one series per attribute set, exported through
 * {@link pgpilotMetricProducer} instead of an OpenTelemetry SDK instrument.
 *
 * Why: the SDK's `Histogram.record()` sorts and serializes the attribute set on every call to find
 * its series (about 1.3 µs with the eight semconv attributes, two calls per query). pgpilot already
 * hands out one frozen attribute object per (operation shape, lane, outcome) — bounded by
 * `MetricAttributes` — so it can find the series by object identity and add to explicit buckets:
 * tens of nanoseconds. The aggregation is the SDK's default explicit-bucket histogram with the
 * same boundaries, cumulative, with min/max.
 *
 * @module
 */
import type { Attributes } from "@opentelemetry/api";

/**
 * Explicit-bucket counts of one series, cumulative since `startMs`. A value equal to a boundary
 * falls in that boundary's bucket (`le`), as in the SDK and Prometheus.
 *
 * @example
 * ```ts
 * const counts = new BucketCounts([0.001, 0.01], Date.now());
 * counts.record(0.001);
 * counts.counts; // [1, 0, 0]
 * ```
 */
export class BucketCounts {
  /** counts[i]: values ≤ boundaries[i] and > boundaries[i-1]; the last slot is the overflow bucket. */
  readonly counts: number[];
  count: number = 0;
  sum: number = 0;
  min: number = Infinity;
  max: number = -Infinity;
  /** Wall-clock ms of the first observation (the series' start time). */
  readonly startMs: number;

  constructor(readonly boundaries: readonly number[], startMs: number) {
    this.counts = new Array<number>(boundaries.length + 1).fill(0);
    this.startMs = startMs;
  }

  record(value: number): void {
    const boundaries = this.boundaries;
    let index = 0;
    // Linear: nine boundaries, and most database calls land in the first two.
    while (index < boundaries.length && value > boundaries[index]!) index++;
    this.counts[index]!++;
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }
}

/** What a local histogram describes itself as (the SDK's instrument descriptor). */
export interface LocalHistogramDescriptor {
  name: string;
  unit: string;
  description: string;
  boundaries: readonly number[];
}

/**
 * A histogram with the `record(value, attributes)` shape of the OTel API's `Histogram`, aggregated
 * locally. Attribute sets are compared by identity: pass the same frozen object for the same
 * series (as `MetricAttributes` does). At most `maxSeries` series; values for more are dropped
 * and counted in `dropped` (the attribute bound upstream keeps this from happening).
 *
 * @example
 * ```ts
 * const duration = new LocalHistogram({ name: "db.client.operation.duration", unit: "s",
 *   description: "…", boundaries: DURATION_BUCKETS_SECONDS });
 * const set = Object.freeze({ "db.system.name": "postgresql" });
 * duration.record(0.002, set);
 * duration.series.get(set)?.count; // 1
 * ```
 */
export class LocalHistogram {
  readonly descriptor: LocalHistogramDescriptor;
  readonly series: Map<Attributes, BucketCounts> = new Map();
  readonly maxSeries: number;
  dropped: number = 0;

  constructor(descriptor: LocalHistogramDescriptor, maxSeries = 10_000) {
    this.descriptor = descriptor;
    this.maxSeries = maxSeries;
  }

  record(value: number, attributes: Attributes = EMPTY): void {
    let counts = this.series.get(attributes);
    if (counts === undefined) {
      if (this.series.size >= this.maxSeries || !(value >= 0)) {
        this.dropped++;
        return;
      }
      counts = new BucketCounts(this.descriptor.boundaries, Date.now());
      this.series.set(attributes, counts);
    }
    // The SDK drops negative and NaN values with a warning; so does this (silently counted).
    if (!(value >= 0)) {
      this.dropped++;
      return;
    }
    counts.record(value);
  }
}

const EMPTY: Attributes = Object.freeze({});
