/**
 * `monitor()` options: one object, validated by valibot at creation.
 *
 * @module
 */
import type { MeterProvider } from "@opentelemetry/api";
import * as v from "valibot";
import { boundedInteger, durationMs, parseOptions, METER_PROVIDER } from "../../shared/config.ts";
import type { PgpilotMetricProducer } from "../../telemetry/metric-producer.ts";
import type { HealthThresholds } from "./health.ts";

/** Options of `monitor()`. Every field is optional; defaults are in the comments. */
export interface MonitorOptions {
  /** A query taking at least this long (ms, 0 to 2^31−1) is slow. Default 150. */
  slowQueryMs?: number;
  /** Most query patterns (fingerprints) kept in per-pattern stats, 1 to 100 000. Default 1000. */
  maxPatterns?: number;
  /** How many patterns `stats()` lists (heaviest by total time), 0 to 1000. Default 10. */
  topPatterns?: number;
  /** Length of the sliding window for rates, recent percentiles and health, in seconds, 1 to 3600. Default 60. */
  windowSeconds?: number;
  /** Bound on distinct metric attribute sets (label sets) with a table name, 1 to 100 000. Default 500. */
  maxAttributeSets?: number;
  /** Thresholds of the health vote. */
  health?: Partial<HealthThresholds>;
  /** Meter provider to use instead of the global one. */
  meterProvider?: MeterProvider;
  /**
   * Where the duration histograms (`db.client.operation.duration`, `db.client.connection.wait_time`
   * and `.use_time`) are aggregated:
   * - a producer from `createMetricProducer()`, also given to the reader's `metricProducers`:
   *   inside pgpilot, tens of nanoseconds per record (SDK views do not apply to them);
   * - `false`: OpenTelemetry SDK instruments (about 1.3 µs of SDK work per record; views apply);
   * - not set (default): the producer `pgpilot/prometheus` linked to the meter provider when it
   *   built that provider, else SDK instruments.
   */
  metricProducer?: PgpilotMetricProducer | false;
}

/** Options after validation, defaults applied. */
export interface ResolvedMonitorOptions {
  slowQueryMs: number;
  maxPatterns: number;
  topPatterns: number;
  windowSeconds: number;
  maxAttributeSets: number;
  health: HealthThresholds;
  meterProvider: MeterProvider | undefined;
  metricProducer: PgpilotMetricProducer | false | undefined;
}

const share = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1));

const HEALTH = v.pipe(
  v.strictObject({
    latencyMs: v.optional(durationMs(0, { exclusive: true }), 200),
    errorRateDegraded: v.optional(share, 0.05),
    errorRateFailed: v.optional(share, 0.5),
    utilizationDegraded: v.optional(share, 0.85),
    minCalls: v.optional(boundedInteger(1, 1_000_000), 20),
    failingStreak: v.optional(boundedInteger(1, 1_000_000), 5),
  }),
  v.check(
    (health) => health.errorRateDegraded <= health.errorRateFailed,
    "errorRateDegraded must not be above errorRateFailed",
  ),
);

const METRIC_PRODUCER = v.custom<PgpilotMetricProducer>(
  (value) =>
    typeof value === "object" && value !== null &&
    typeof (value as PgpilotMetricProducer).register === "function" &&
    typeof (value as PgpilotMetricProducer).collect === "function",
  "must be a producer from createMetricProducer(), or false",
);

const OPTIONS = v.strictObject({
  slowQueryMs: v.optional(durationMs(0), 150),
  maxPatterns: v.optional(boundedInteger(1, 100_000), 1000),
  topPatterns: v.optional(boundedInteger(0, 1000), 10),
  windowSeconds: v.optional(boundedInteger(1, 3600), 60),
  maxAttributeSets: v.optional(boundedInteger(1, 100_000), 500),
  health: v.optional(HEALTH, {}),
  meterProvider: v.optional(METER_PROVIDER),
  metricProducer: v.optional(v.union([v.literal(false), METRIC_PRODUCER])),
});

/**
 * Validate `monitor()` options; throws a `ConfigError` naming each bad field.
 *
 * @example
 * ```ts
 * parseMonitorOptions({ slowQueryMs: 300 }).maxPatterns; // 1000
 * parseMonitorOptions({ slowQueryMs: -1 }); // throws ConfigError "monitor: slowQueryMs: …"
 * ```
 */
export function parseMonitorOptions(input: MonitorOptions | undefined): ResolvedMonitorOptions {
  const parsed = parseOptions("monitor", OPTIONS, input);
  return { ...parsed, meterProvider: parsed.meterProvider, metricProducer: parsed.metricProducer };
}
