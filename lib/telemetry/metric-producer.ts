/**
 * `createMetricProducer()`: hands the histograms pgpilot aggregates itself ({@link LocalHistogram})
 * to an OpenTelemetry `MetricReader`, next to what the SDK collects.
 *
 * A library cannot add a producer to someone else's reader, so it is wired where the reader is
 * built: `pgpilot/prometheus` does it for the providers it builds; with an OTLP reader, pass
 * `metricProducers: [producer]` to the reader and `monitor({ metricProducer: producer })`.
 *
 * Only runtime import: the OTel API (`ValueType`). The SDK's types are type-only imports, so the
 * core stays free of the SDK at runtime.
 *
 * @module
 */
import { type Attributes, type MeterProvider, ValueType } from "@opentelemetry/api";
import type {
  AggregationTemporality,
  CollectionResult,
  DataPointType,
  HistogramMetricData,
  MetricProducer,
  ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { VERSION } from "../shared/version.ts";
import type { BucketCounts, LocalHistogram } from "./local-histogram.ts";
import { SCOPE_NAME } from "./otel.ts";

// The SDK's enum values (stable parts of its data model), without importing the SDK at runtime.
const HISTOGRAM = 0 as DataPointType.HISTOGRAM;
const CUMULATIVE = 1 as AggregationTemporality.CUMULATIVE;
// Readers replace a producer's resource with their SDK's own ("The resource returned by these
// MetricProducers is ignored"), so none is made here.
const NO_RESOURCE = { attributes: {} } as unknown as ResourceMetrics["resource"];

const linkedProducers = new WeakMap<object, PgpilotMetricProducer>();

/**
 * A MetricProducer that exports the histograms `monitor()` aggregates itself. Give it to the
 * reader (`metricProducers: [producer]`) and to the monitor (`monitor({ metricProducer: producer })`).
 */
export interface PgpilotMetricProducer extends MetricProducer {
  /**
   * Export these histograms. The returned function retires them: their counts are folded into
   * what the producer keeps (merged with equal series, so memory is bounded by distinct series,
   * as in the SDK) and stay exported; the histograms themselves are let go (monitor's close()).
   */
  register(histograms: readonly LocalHistogram[]): () => void;
}

/**
 * Create a producer for pgpilot's locally aggregated histograms, cumulative, merged by name and
 * attribute set (two pilots with the same pool name and lane add up, as in one SDK instrument).
 *
 * @example
 * ```ts
 * import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
 * import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
 * import { createMetricProducer, monitor, pilot } from "pgpilot";
 *
 * const metricProducer = createMetricProducer();
 * const reader = new PeriodicExportingMetricReader({
 *   exporter: new OTLPMetricExporter({ url }),
 *   metricProducers: [metricProducer],
 * });
 * const meterProvider = new MeterProvider({ readers: [reader] });
 * const sql = pilot(postgres(dbUrl), { interceptors: [monitor({ meterProvider, metricProducer })] });
 * ```
 */
export function createMetricProducer(): PgpilotMetricProducer {
  const sources = new Set<LocalHistogram>();
  // Counts of retired histograms, by metric name and attribute key.
  const retired = new Map<string, Series>();
  return {
    collect(): Promise<CollectionResult> {
      return Promise.resolve({
        resourceMetrics: { resource: NO_RESOURCE, scopeMetrics: collectHistograms(sources, retired) },
        errors: [],
      });
    },
    register(histograms) {
      for (const histogram of histograms) sources.add(histogram);
      return () => {
        for (const histogram of histograms) {
          if (!sources.delete(histogram)) continue;
          addSeries(retired, histogram);
        }
      };
    },
  };
}

/** One metric's points by attribute key, with the histogram that describes the metric. */
interface Series {
  histogram: LocalHistogram;
  points: Map<string, Point>;
}

/** Add every non-empty series of `histogram` to `byName`, merging equal attribute sets. */
function addSeries(byName: Map<string, Series>, histogram: LocalHistogram): void {
  let entry = byName.get(histogram.descriptor.name);
  if (entry === undefined) byName.set(histogram.descriptor.name, entry = { histogram, points: new Map() });
  for (const [attributes, counts] of histogram.series) {
    if (counts.count === 0) continue;
    const key = keyOf(attributes);
    const point = entry.points.get(key);
    if (point === undefined) entry.points.set(key, pointOf(attributes, counts));
    else merge(point, counts);
  }
}

function collectHistograms(
  sources: ReadonlySet<LocalHistogram>,
  retired: ReadonlyMap<string, Series>,
): ResourceMetrics["scopeMetrics"] {
  const byName = new Map<string, Series>();
  for (const [name, entry] of retired) {
    const points = new Map<string, Point>();
    for (const [key, point] of entry.points) points.set(key, { ...point, counts: [...point.counts] });
    byName.set(name, { histogram: entry.histogram, points });
  }
  for (const histogram of sources) addSeries(byName, histogram);
  const endTime = hrTime(Date.now());
  const metrics: HistogramMetricData[] = [];
  for (const { histogram, points } of byName.values()) {
    // Like the SDK: an instrument nothing was recorded into is not exported.
    if (points.size === 0) continue;
    const { name, unit, description } = histogram.descriptor;
    metrics.push({
      descriptor: { name, unit, description, valueType: ValueType.DOUBLE },
      aggregationTemporality: CUMULATIVE,
      dataPointType: HISTOGRAM,
      dataPoints: [...points.values()].map((point) => ({
        startTime: hrTime(point.startMs),
        endTime,
        attributes: point.attributes,
        value: {
          buckets: { boundaries: [...point.boundaries], counts: point.counts },
          count: point.count,
          sum: point.sum,
          min: point.min,
          max: point.max,
        },
      })),
    });
  }
  return metrics.length === 0 ? [] : [{ scope: { name: SCOPE_NAME, version: VERSION }, metrics }];
}

interface Point {
  attributes: Attributes;
  boundaries: readonly number[];
  counts: number[];
  count: number;
  sum: number;
  min: number;
  max: number;
  startMs: number;
}

function pointOf(attributes: Attributes, counts: BucketCounts): Point {
  return {
    attributes,
    boundaries: counts.boundaries,
    counts: [...counts.counts],
    count: counts.count,
    sum: counts.sum,
    min: counts.min,
    max: counts.max,
    startMs: counts.startMs,
  };
}

function merge(point: Point, counts: BucketCounts): void {
  for (let index = 0; index < point.counts.length; index++) point.counts[index]! += counts.counts[index] ?? 0;
  point.count += counts.count;
  point.sum += counts.sum;
  point.min = Math.min(point.min, counts.min);
  point.max = Math.max(point.max, counts.max);
  point.startMs = Math.min(point.startMs, counts.startMs);
}

/** A stable key of an attribute set (only at collection time, never per query). */
function keyOf(attributes: Attributes): string {
  return JSON.stringify(Object.keys(attributes).sort().map((key) => [key, attributes[key]]));
}

function hrTime(ms: number): [number, number] {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6))];
}

/**
 * Record that every reader of `provider` collects `producer` (pgpilot/prometheus does this for the
 * providers it builds), so `monitor({ meterProvider: provider })` — or `monitor()` when `provider`
 * is the global one — aggregates its histograms locally into `producer` without being told.
 *
 * @example
 * ```ts
 * const producer = createMetricProducer();
 * const provider = new MeterProvider({ readers: [new PrometheusExporter({ metricProducers: [producer] })] });
 * linkMetricProducer(provider, producer);
 * ```
 */
export function linkMetricProducer(provider: MeterProvider, producer: PgpilotMetricProducer): void {
  linkedProducers.set(provider, producer);
}

/**
 * The producer linked to `provider` with {@link linkMetricProducer}, if any.
 *
 * @example
 * ```ts
 * linkedMetricProducer(metrics.getMeterProvider()); // set after servePrometheus() registered its provider
 * ```
 */
export function linkedMetricProducer(provider: MeterProvider): PgpilotMetricProducer | undefined {
  return linkedProducers.get(provider);
}
