/**
 * `monitor()`: OpenTelemetry semconv metrics, pool accounting, slow queries and client-side
 * per-pattern statistics, with bounded memory.
 *
 * Put it after `tracing()` and before routing, admission and retries —
 * `[tracing(), monitor(), affinity(), deadline(), retry(), breaker(), adaptive()]` — so it sees
 * each operation once, with its final outcome and final lane, including queue wait and retries.
 *
 * @module
 */
import { metrics } from "@opentelemetry/api";
import { Listeners } from "../../shared/listeners.ts";
import { classify, FAILURE_CATEGORIES, type FailureCategory, underlyingError } from "../../shared/classify.ts";
import { isPilotError } from "../../shared/errors.ts";
import type { HealthReport, LaneInfo, Next, PilotContext } from "../../core/interceptor.ts";
import type { Operation } from "../../core/operation.ts";
import { reportHookError } from "../../shared/diag.ts";
import { LogHistogram } from "../../shared/log-histogram.ts";
import { MetricAttributes } from "../../telemetry/metric-attributes.ts";
import { observe } from "../../telemetry/observe.ts";
import { linkedMetricProducer, type PgpilotMetricProducer } from "../../telemetry/metric-producer.ts";
import { pgpilotMeter } from "../../telemetry/otel.ts";
import { type PatternSnapshot, PatternStats } from "./pattern-stats.ts";
import { PoolAccounting } from "./pool-accounting.ts";
import { SlidingWindow } from "../../shared/sliding-window.ts";
import { type FailingStreak, monitorHealth } from "./health.ts";
import { createInstruments, type MonitorInstruments } from "./instruments.ts";
import { describeError, isRejection, rowsOf, streakCounts } from "./outcomes.ts";
import type { MonitorInterceptor, MonitorStats, SlowQueryEvent } from "./types.ts";
import { type MonitorOptions, parseMonitorOptions } from "./options.ts";

export type { MonitorOptions } from "./options.ts";
export type { HealthThresholds } from "./health.ts";
export type { PatternSnapshot } from "./pattern-stats.ts";
export type { LaneUsage } from "./pool-accounting.ts";
export type { Monitor, MonitorInterceptor, MonitorStats, SlowQueryEvent } from "./types.ts";

const MAX_EVENT_TEXT = 1000;
const round = (value: number): number => Math.round(value * 1000) / 1000;

/**
 * Metrics, pool accounting, slow queries and per-pattern statistics.
 *
 * Metrics (OpenTelemetry semconv names; Prometheus names in parentheses):
 * `db.client.operation.duration` (`db_client_operation_duration_*`), `db.client.connection.count`
 * (`db_client_connections_usage`: Prometheus reserves `_count`, see `PROMETHEUS_RENAMES`)
 * with `db.client.connection.state` used/idle, `.max`, `.idle.max`, `.idle.min`,
 * `.pending_requests`, `.wait_time`, `.use_time`, `.timeouts` (`…_total`), and
 * `pgpilot.slow_queries` (`pgpilot_slow_queries_total`).
 *
 * @example
 * ```ts
 * const monitoring = monitor({ slowQueryMs: 150 });
 * monitoring.onSlowQuery((event) => console.warn("slow", event.command, event.durationMs));
 * const sql = pilot(postgres(url), { name: "main", interceptors: [tracing(), monitoring] });
 * await sql`select 1`;
 * sql.stats().monitor; // { totals: { queries: 1, … }, window: { queriesPerSecond, p95Ms, … }, … }
 * ```
 */
export function monitor(options?: MonitorOptions): MonitorInterceptor {
  const config = parseMonitorOptions(options);
  const slowQueryMs = config.slowQueryMs;
  const listeners = new Listeners<SlowQueryEvent>("monitor.onSlowQuery");
  const patterns = new PatternStats(config.maxPatterns);
  const latency = new LogHistogram();
  const window = new SlidingWindow(config.windowSeconds);
  const errors = Object.fromEntries([...FAILURE_CATEGORIES, "rejected"].map((category) => [category, 0])) as Record<
    FailureCategory | "rejected",
    number
  >;
  const streaks = new Map<string, FailingStreak>();
  const totals = { queries: 0, transactions: 0, reserves: 0, errors: 0, slow: 0, rows: 0 };
  // Failures already counted for a child query: its transaction failing with the same error
  // (or an ORM's wrapper around it) must not count twice.
  const childErrors = new WeakSet<object>();
  let lanes: ReadonlyMap<string, LaneInfo> = new Map();
  let pool = new PoolAccounting(lanes);
  let attributes = new MetricAttributes("default", lanes, config.maxAttributeSets);
  let instruments: MonitorInstruments | undefined;
  let meterProvider = config.meterProvider;
  let histograms: "sdk" | "local" = config.metricProducer ? "local" : "sdk";

  function settled(op: Operation, value: unknown, error: unknown, failed: boolean): void {
    const end = performance.now();
    const ms = end - op.startedAt;
    try {
      if (op.parent === undefined) {
        pool.end(op);
        recordConnection(op, ms, error, failed);
        if (failed || streaks.size > 0) recordStreak(op, error, failed);
      }
      if (op.kind === "query") recordQuery(op, end, ms, value, error, failed);
      else recordHolder(op, end, error, failed);
    } catch (hookError) {
      reportHookError("monitor", hookError);
    }
  }

  /** Operations in a row that failed on a lane (health: a lane where every call fails is down). */
  function recordStreak(op: Operation, error: unknown, failed: boolean): void {
    if (!failed) {
      streaks.delete(op.lane);
      return;
    }
    if (isRejection(error) || !streakCounts(error)) return;
    const streak = streaks.get(op.lane);
    const text = describeError(error);
    if (streak === undefined) streaks.set(op.lane, { failures: 1, error: text });
    else {
      streak.failures++;
      streak.error = text;
    }
  }

  function isChildFailure(error: unknown): boolean {
    const failure = underlyingError(error);
    return typeof failure === "object" && failure !== null && childErrors.has(failure);
  }

  /** A call the breaker turned away: an error for the caller, without a latency. */
  function recordRejection(end: number, query: boolean): void {
    if (query) totals.queries++;
    totals.errors++;
    errors.rejected++;
    window.record(end, undefined, false, true);
  }

  function recordQuery(op: Operation, end: number, ms: number, value: unknown, error: unknown, failed: boolean): void {
    if (failed && isRejection(error)) return recordRejection(end, true);
    totals.queries++;
    let category: FailureCategory | undefined;
    if (failed) {
      category = classify(error);
      totals.errors++;
      errors[category]++;
      const failure = underlyingError(error);
      if (op.parent !== undefined && typeof failure === "object" && failure !== null) childErrors.add(failure);
    }
    const rows = failed ? 0 : rowsOf(value);
    totals.rows += rows;
    const slow = ms >= slowQueryMs;
    latency.record(ms);
    window.record(end, ms, failed && category !== "client");
    patterns.record(op.analysis, ms, failed, rows, slow);
    if (instruments !== undefined) {
      try {
        const set = failed ? attributes.failure(op.analysis, op.lane, error) : attributes.success(op.analysis, op.lane);
        instruments.duration.record(ms / 1000, set);
        if (slow) instruments.slowQueries.add(1, set);
      } catch (hookError) {
        reportHookError("monitor.record", hookError);
      }
    }
    if (slow) {
      totals.slow++;
      if (!listeners.empty) emitSlow(op, ms, failed);
    }
  }

  /** A transaction or reservation settled. */
  function recordHolder(op: Operation, end: number, error: unknown, failed: boolean): void {
    if (op.kind === "transaction") totals.transactions++;
    else totals.reserves++;
    if (failed && isRejection(error)) return recordRejection(end, false);
    let ownFailure = false;
    // A failure its child query already counted (or an ORM's wrapper around it) counts once.
    if (failed && !isChildFailure(error)) {
      const category = classify(error);
      totals.errors++;
      errors[category]++;
      ownFailure = category !== "client";
    }
    window.record(end, undefined, ownFailure);
  }

  /** wait_time, use_time and timeouts of a root operation. */
  function recordConnection(op: Operation, ms: number, error: unknown, failed: boolean): void {
    if (instruments === undefined) return;
    try {
      const set = attributes.pool(op.lane);
      if (failed && isPilotError(error) && error.code === "POOL_TIMEOUT") instruments.timeouts.add(1, set);
      const waitMs = waitOf(op);
      if (waitMs === undefined) return;
      // Without a queue in the chain the only wait is postgres.js's own, which pgpilot cannot
      // see: recording zeros would claim there was none (and cost a measurement per query).
      if (pool.hasQueue) instruments.waitTime.record(waitMs / 1000, set);
      instruments.useTime.record(Math.max(0, ms - waitMs) / 1000, set);
    } catch (hookError) {
      reportHookError("monitor.record", hookError);
    }
  }

  /**
   * Time from entering the chain to being handed to postgres.js (queue wait, routing, retries
   * before the last attempt), or undefined when the operation never reached the pool.
   */
  function waitOf(op: Operation): number | undefined {
    return op.dispatchedAt > 0 ? Math.max(0, op.dispatchedAt - op.startedAt) : undefined;
  }

  function emitSlow(op: Operation, ms: number, failed: boolean): void {
    const text = op.text;
    const event: SlowQueryEvent = {
      fingerprint: op.fingerprint,
      command: op.command,
      collection: op.collection,
      lane: op.lane,
      durationMs: round(ms),
      thresholdMs: slowQueryMs,
      inTransaction: op.parent !== undefined,
      failed,
      text: text.length > MAX_EVENT_TEXT ? text.slice(0, MAX_EVENT_TEXT) + "…" : text,
    };
    listeners.emit(event);
  }

  /** The producer to aggregate into: given, linked to the meter provider by pgpilot/prometheus, or none. */
  function metricProducer(): PgpilotMetricProducer | undefined {
    if (config.metricProducer !== undefined) return config.metricProducer || undefined;
    return linkedMetricProducer(meterProvider ?? metrics.getMeterProvider());
  }

  function stats(): MonitorStats {
    const now = performance.now();
    const recent = window.snapshot(now);
    return {
      slowQueryMs,
      histograms,
      totals: { ...totals },
      window: {
        seconds: round(recent.seconds),
        queriesPerSecond: round(recent.latency.count / recent.seconds),
        operations: recent.calls,
        failures: recent.failures,
        errorRate: round(recent.failureRate),
        meanMs: round(recent.latency.mean),
        p95Ms: round(recent.latency.quantile(0.95)),
        p99Ms: round(recent.latency.quantile(0.99)),
      },
      latency: {
        meanMs: round(latency.mean),
        p50Ms: round(latency.quantile(0.5)),
        p95Ms: round(latency.quantile(0.95)),
        p99Ms: round(latency.quantile(0.99)),
        maxMs: round(latency.max),
      },
      slow: { count: totals.slow, share: totals.queries === 0 ? 0 : round(totals.slow / totals.queries) },
      errors: { ...errors },
      pool: pool.usage(),
      patterns: {
        tracked: patterns.size,
        max: config.maxPatterns,
        evicted: patterns.evicted,
        evictedCalls: patterns.evictedCalls,
        top: patterns.top(config.topPatterns),
      },
      attributeSets: { size: attributes.size, folded: attributes.folded },
    };
  }

  return {
    name: "monitor",
    stage: "observe",
    slowQueryMs,
    provides: { slowQueryMs },
    intercept(op: Operation, next: Next): Promise<unknown> {
      if (op.parent === undefined) pool.begin(op);
      return observe(next, (value, error, failed) => settled(op, value, error, failed));
    },
    attach(context: PilotContext): void {
      lanes = context.lanes;
      meterProvider = config.meterProvider ?? context.meterProvider;
      const capabilities = context.capabilities;
      pool = new PoolAccounting(lanes, capabilities.queues ? (lane) => capabilities.queueDepth(lane) : undefined);
      attributes = new MetricAttributes(context.name, lanes, config.maxAttributeSets);
      try {
        instruments?.detach();
        const producer = metricProducer();
        histograms = producer === undefined ? "sdk" : "local";
        instruments = createInstruments(pgpilotMeter(meterProvider), lanes, attributes, pool, producer);
      } catch (error) {
        instruments = undefined;
        reportHookError("monitor.attach", error);
      }
    },
    onSlowQuery: (listener) => listeners.add(listener),
    patterns(options?: { limit?: number; includeText?: boolean }): PatternSnapshot[] {
      return patterns.top(options?.limit ?? config.maxPatterns, { includeText: options?.includeText });
    },
    stats,
    health(): HealthReport {
      return monitorHealth(window.snapshot(performance.now()), pool.usage(), config.health, streaks);
    },
    async close(): Promise<void> {
      try {
        instruments?.detach();
      } catch (error) {
        reportHookError("monitor.close", error);
      }
      instruments = undefined;
      listeners.clear();
    },
  };
}
