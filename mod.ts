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
export { pilot } from "./lib/pilot.ts";
export type { PilotApi, PilotOptions, PilotSql, PilotStats } from "./lib/pilot.ts";
export { compose } from "./lib/compose.ts";
export type { Chain } from "./lib/compose.ts";
export { Operation } from "./lib/operation.ts";
export type { CallScope, OperationAnalysis, OperationKind } from "./lib/operation.ts";
export type { HealthReport, HealthStatus, Interceptor, LaneInfo, Next, PilotContext } from "./lib/interceptor.ts";
export type { PilotHealth } from "./lib/health.ts";
export { classify, errorCode, FAILURE_CATEGORIES, isSqlState } from "./lib/classify.ts";
export type { FailureCategory } from "./lib/classify.ts";
export {
  CircuitOpenError,
  ConfigError,
  DeadlineExceededError,
  isPilotError,
  PilotError,
  PoolSaturatedError,
  PoolTimeoutError,
} from "./lib/errors.ts";
export type { PilotErrorCode } from "./lib/errors.ts";
export { analyzeSql } from "./lib/sql/analyze.ts";
export type { SqlAnalysis } from "./lib/sql/analyze.ts";
