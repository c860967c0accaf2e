/**
 * What `monitor()` returns and reports: the interceptor's shape, its stats section and its
 * slow-query events.
 *
 * @module
 */
import type { HealthReport, Interceptor } from "../../core/interceptor.ts";
import type { FailureCategory } from "../../shared/classify.ts";
import type { Subscription } from "../../shared/listeners.ts";
import type { PatternSnapshot } from "./pattern-stats.ts";
import type { LaneUsage } from "./pool-accounting.ts";

/** What `onSlowQuery` listeners receive. No parameter values: `text` is parameterized/redacted. */
export interface SlowQueryEvent {
  fingerprint: string;
  command: string;
  collection: string | undefined;
  lane: string;
  durationMs: number;
  thresholdMs: number;
  /** True when the query ran inside a transaction or reservation. */
  inTransaction: boolean;
  /** Whether it failed (slow failures are slow queries too). */
  failed: boolean;
  /** Parameterized text (`$1`), with literals of `unsafe()` text redacted; at most 1000 characters. */
  text: string;
}

/** `monitor()`'s section of `sql.stats()`. */
export interface MonitorStats {
  slowQueryMs: number;
  /** Where the duration histograms are aggregated (`monitor({ histograms })` resolved at attach). */
  histograms: "sdk" | "local";
  /** Since creation. Queries include those inside transactions. */
  totals: {
    queries: number;
    transactions: number;
    reserves: number;
    errors: number;
    slow: number;
    rows: number;
  };
  /** The last `windowSeconds` (fewer just after start). */
  window: {
    seconds: number;
    queriesPerSecond: number;
    operations: number;
    failures: number;
    errorRate: number;
    meanMs: number;
    p95Ms: number;
    p99Ms: number;
  };
  /** All-time query latency (log-scale buckets: percentiles within ±9%). */
  latency: { meanMs: number; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number };
  slow: { count: number; share: number };
  /**
   * Failed operations by failure category (a failing query inside a failing transaction counts
   * once); `rejected`: calls an open circuit turned away (`CIRCUIT_OPEN`), which count in the
   * error rate but not in latency.
   */
  errors: Record<FailureCategory | "rejected", number>;
  /** Pool figures per lane (see PoolAccounting for definitions). */
  pool: Record<string, LaneUsage>;
  patterns: { tracked: number; max: number; evicted: number; evictedCalls: number; top: PatternSnapshot[] };
  /** Metric label sets in use and how many combinations were folded by the bound. */
  attributeSets: { size: number; folded: number };
}

/** @deprecated Use `MonitorInterceptor`. */
export type Monitor = MonitorInterceptor;

/** The interceptor `monitor()` returns. */
export interface MonitorInterceptor extends Interceptor {
  readonly name: "monitor";
  /** The slow-query threshold in ms; provided to the chain (tracing adds a span event at it). */
  readonly slowQueryMs: number;
  /**
   * Call `listener` for every query at or above `slowQueryMs`. A throwing listener is reported
   * through OTel `diag`, never to the query.
   */
  onSlowQuery(listener: (event: SlowQueryEvent) => void): Subscription;
  /** Per-pattern stats, heaviest by total time first. `includeText` adds the normalized text. */
  patterns(options?: { limit?: number; includeText?: boolean }): PatternSnapshot[];
  stats(): MonitorStats;
  health(): HealthReport;
}
