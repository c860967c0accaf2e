/**
 * Where telemetry failures go: OpenTelemetry's `diag` logger, never the caller.
 *
 * @module
 */
import { diag } from "@opentelemetry/api";

/**
 * Report an exception thrown by a metrics/tracing hook or a user event listener. The query's
 * own result is unaffected; the report goes to `diag` (silent unless a diag logger is set).
 *
 * @example
 * ```ts
 * try { histogram.record(seconds, attributes); } catch (error) { reportHookError("monitor.record", error); }
 * ```
 */
export function reportHookError(where: string, error: unknown): void {
  try {
    diag.error(`pgpilot: ${where} failed: ${error instanceof Error ? error.message : String(error)}`);
  } catch {
    // A broken diag logger must not break the caller either.
  }
}

/**
 * Call a listener, reporting (not throwing) what it throws.
 *
 * @example
 * ```ts
 * for (const listener of listeners) safely("onSlowQuery", listener, event);
 * ```
 */
export function safely<T>(where: string, listener: (event: T) => void, event: T): void {
  try {
    listener(event);
  } catch (error) {
    reportHookError(where, error);
  }
}
