/**
 * The OpenTelemetry instruments of `monitor()`: semconv `db.client.*` metrics plus
 * `pgpilot.slow_queries`. Taken from the meter when `pilot()` attaches the monitor.
 *
 * @module
 */
import type { BatchObservableCallback, Counter, Histogram, Meter } from "@opentelemetry/api";
import { LocalHistogram } from "../../telemetry/local-histogram.ts";
import type { PgpilotMetricProducer } from "../../telemetry/metric-producer.ts";
import type { LaneInfo } from "../../core/interceptor.ts";
import { reportHookError } from "../../shared/diag.ts";
import type { MetricAttributes } from "../../telemetry/metric-attributes.ts";
import { ATTR, DURATION_BUCKETS_SECONDS, METRIC, MONITOR_METRIC } from "../../telemetry/names.ts";

export { MONITOR_METRIC } from "../../telemetry/names.ts";
import type { PoolAccounting } from "./pool-accounting.ts";


/** What `monitor()` records a duration into: an SDK histogram or a {@link LocalHistogram}. */
export type DurationRecorder = Pick<Histogram, "record">;

/** The instruments `monitor()` records into. */
export interface MonitorInstruments {
  duration: DurationRecorder;
  waitTime: DurationRecorder;
  useTime: DurationRecorder;
  timeouts: Counter;
  slowQueries: Counter;
  /** Stop observing the pool gauges (monitor's `close()`); recorded histograms stay exported. */
  detach(): void;
}

const seconds = { unit: "s", advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_SECONDS] } };

const HISTOGRAMS = {
  duration: {
    name: METRIC.OPERATION_DURATION,
    description: "Duration of database client operations (queries; queue wait included).",
  },
  waitTime: {
    name: METRIC.WAIT_TIME,
    description: "Time a root operation waited in pgpilot's queue (adaptive()) before it was handed to the pool.",
  },
  useTime: {
    name: METRIC.USE_TIME,
    description: "Time a root operation (query, transaction, reservation) held a connection.",
  },
} as const;

/**
 * Create the instruments and the observable pool gauges (read at collection time, so the hot
 * path only touches plain counters). With a `producer`, the three duration histograms are
 * {@link LocalHistogram}s registered with it instead of SDK instruments.
 *
 * @example
 * ```ts
 * const instruments = createInstruments(pgpilotMeter(), context.lanes, attributes, pool);
 * instruments.duration.record(0.002, attributes.success(op.analysis, op.lane));
 * ```
 */
export function createInstruments(
  meter: Meter,
  lanes: ReadonlyMap<string, LaneInfo>,
  attributes: MetricAttributes,
  pool: PoolAccounting,
  producer?: PgpilotMetricProducer,
): MonitorInstruments {
  // With a producer: aggregated here and exported through it (no SDK call per query).
  const make = (key: keyof typeof HISTOGRAMS): DurationRecorder =>
    producer !== undefined
      ? new LocalHistogram({ ...HISTOGRAMS[key], unit: "s", boundaries: DURATION_BUCKETS_SECONDS })
      : meter.createHistogram(HISTOGRAMS[key].name, { ...seconds, description: HISTOGRAMS[key].description });
  const instruments: Omit<MonitorInstruments, "detach"> = {
    duration: make("duration"),
    waitTime: make("waitTime"),
    useTime: make("useTime"),
    timeouts: meter.createCounter(METRIC.TIMEOUTS, {
      unit: "{timeout}",
      description: "Operations that timed out waiting in pgpilot's queue (POOL_TIMEOUT).",
    }),
    slowQueries: meter.createCounter(MONITOR_METRIC.SLOW_QUERIES, {
      unit: "{query}",
      description: "Queries at or above monitor({ slowQueryMs }).",
    }),
  };
  const locals = [instruments.duration, instruments.waitTime, instruments.useTime]
    .filter((recorder): recorder is LocalHistogram => recorder instanceof LocalHistogram);
  // Retired on close(): the producer keeps their counts (the last export after close() still has
  // them, as with SDK instruments) without keeping this monitor's histograms alive.
  const retire = producer?.register(locals);

  const count = meter.createObservableUpDownCounter(METRIC.CONNECTION_COUNT, {
    unit: "{connection}",
    description: "Connections in use (busy with a root operation) and idle (spare capacity), derived by pgpilot.",
  });
  const max = meter.createObservableUpDownCounter(METRIC.CONNECTION_MAX, {
    unit: "{connection}",
    description: "The lane's postgres.js max.",
  });
  const idleMax = meter.createObservableUpDownCounter(METRIC.CONNECTION_IDLE_MAX, {
    unit: "{connection}",
    description: "Most idle connections the lane keeps (postgres.js max).",
  });
  const idleMin = meter.createObservableUpDownCounter(METRIC.CONNECTION_IDLE_MIN, {
    unit: "{connection}",
    description: "Fewest idle connections the lane keeps (0: postgres.js connects lazily).",
  });
  const pending = meter.createObservableUpDownCounter(METRIC.PENDING_REQUESTS, {
    unit: "{request}",
    description: "Operations waiting in pgpilot's queue (adaptive()).",
  });

  const observe: BatchObservableCallback = (observer) => {
    try {
      const usage = pool.usage();
      for (const lane of lanes.values()) {
        const figures = usage[lane.name]!;
        const base = attributes.pool(lane.name);
        observer.observe(count, figures.used, { ...base, [ATTR.CONNECTION_STATE]: "used" });
        observer.observe(count, figures.idle, { ...base, [ATTR.CONNECTION_STATE]: "idle" });
        observer.observe(max, figures.max, base);
        observer.observe(idleMax, figures.max, base);
        observer.observe(idleMin, 0, base);
        observer.observe(pending, figures.pending, base);
      }
    } catch (error) {
      reportHookError("monitor.observe", error);
    }
  };
  const observables = [count, max, idleMax, idleMin, pending];
  meter.addBatchObservableCallback(observe, observables);
  return {
    ...instruments,
    detach: () => {
      retire?.();
      meter.removeBatchObservableCallback(observe, observables);
    },
  };
}
