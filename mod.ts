/**
 * pgpilot: composable interceptors for postgres.js — OpenTelemetry metrics and traces, a
 * circuit breaker, adaptive concurrency, lanes, retries and deadlines.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { pilot } from "pgpilot";
 *
 * const sql = pilot(postgres(process.env.DATABASE_URL!), { interceptors: [] });
 * const [{ answer }] = await sql`select 42 as answer`;
 * ```
 *
 * @module
 */
export { pilot } from "./lib/core/pilot.ts";
export type { PilotApi, PilotOptions, PilotSql, PilotStats, StatsSections } from "./lib/core/pilot.ts";
export { compose } from "./lib/core/compose.ts";
export type { Chain } from "./lib/core/compose.ts";
export { Operation } from "./lib/core/operation.ts";
export type { CallScope, OperationAnalysis, OperationKind } from "./lib/core/operation.ts";
export type {
  Capabilities,
  ChainCapabilities,
  HealthReport,
  HealthStatus,
  Interceptor,
  LaneInfo,
  Next,
  PilotContext,
  Stage,
} from "./lib/core/interceptor.ts";
export { OperationSlot } from "./lib/core/operation.ts";
export type { Subscription } from "./lib/shared/listeners.ts";
export type { PilotHealth } from "./lib/core/health.ts";
export { healthHandler } from "./lib/telemetry/health-handler.ts";
export type { HealthSource } from "./lib/telemetry/health-handler.ts";
export { createMetricProducer } from "./lib/telemetry/metric-producer.ts";
export type { PgpilotMetricProducer } from "./lib/telemetry/metric-producer.ts";
export { classify, errorCode, FAILURE_CATEGORIES, isSqlState } from "./lib/shared/classify.ts";
export type { FailureCategory } from "./lib/shared/classify.ts";
export {
  CircuitOpenError,
  ConfigError,
  DeadlineExceededError,
  isPilotError,
  PilotError,
  PoolSaturatedError,
  PoolTimeoutError,
} from "./lib/shared/errors.ts";
export type { PilotErrorCode } from "./lib/shared/errors.ts";
export { analyzeSql } from "./lib/sql/analyze.ts";
export type { SqlAnalysis } from "./lib/sql/analyze.ts";

// ---- interceptors (recommended order: tracing, monitor, affinity, deadline, retry, breaker, adaptive)
export { SLOW_QUERY_EVENT, tracing } from "./lib/interceptors/tracing/index.ts";
export type { Tracing, TracingInterceptor, TracingOptions } from "./lib/interceptors/tracing/index.ts";
export { monitor } from "./lib/interceptors/monitor/index.ts";
export type {
  HealthThresholds,
  LaneUsage,
  Monitor,
  MonitorInterceptor,
  MonitorOptions,
  MonitorStats,
  PatternSnapshot,
  SlowQueryEvent,
} from "./lib/interceptors/monitor/index.ts";
export { AFFINITY_METRIC, AFFINITY_REASON_ATTRIBUTE, affinity } from "./lib/interceptors/affinity/index.ts";
export type {
  AffinityInterceptor,
  AffinityOptions,
  AffinityStats,
  PatternChange,
  PatternEvidence,
  PatternState,
  RoutingReason,
} from "./lib/interceptors/affinity/index.ts";
export { deadline } from "./lib/interceptors/deadline/index.ts";
export type { Deadline, DeadlineExpiry, DeadlineInterceptor, DeadlineOptions } from "./lib/interceptors/deadline/index.ts";
export { retry, RETRY_METRIC } from "./lib/interceptors/retry/index.ts";
export type { Retry, RetryEvent, RetryInterceptor, RetryOptions, RetryReason, RetryStats } from "./lib/interceptors/retry/index.ts";
export { breaker } from "./lib/interceptors/breaker/index.ts";
export { BREAKER_ATTR, BREAKER_METRIC } from "./lib/interceptors/breaker/telemetry.ts";
export type {
  Breaker,
  BreakerInterceptor,
  BreakerOptions,
  BreakerRejection,
  BreakerStats,
  CircuitSnapshot,
  CircuitStateName,
  CircuitTransition,
  CountedCategory,
  LaneBreakerStats,
} from "./lib/interceptors/breaker/index.ts";
export { adaptive } from "./lib/interceptors/adaptive/index.ts";
export { aimd, fixed, gradient, vegas } from "./lib/interceptors/adaptive/strategies.ts";
export type { AimdOptions, GradientOptions, LimitStrategy, VegasOptions } from "./lib/interceptors/adaptive/strategies.ts";
export type { LimitAlgorithm, LimitSample } from "./lib/interceptors/adaptive/algorithm.ts";
export type { AdaptiveInterceptor, AdaptiveOptions, AdaptiveStats } from "./lib/interceptors/adaptive/index.ts";
export type { AdaptiveLaneStats, LimitChange } from "./lib/interceptors/adaptive/lane.ts";
export type { LoadSnapshot } from "./lib/interceptors/adaptive/load-monitor.ts";
export type { ForecastAccuracy } from "./lib/interceptors/adaptive/forecast.ts";
export { ADAPTIVE_METRIC } from "./lib/interceptors/adaptive/metrics.ts";
