/**
 * Meter and tracer access. `@opentelemetry/api` is a peer dependency: with no SDK
 * registered everything is a no-op and costs almost nothing.
 *
 * @module
 */
import { metrics, type Meter, type MeterProvider, trace, type Tracer, type TracerProvider } from "@opentelemetry/api";
import { VERSION } from "../shared/version.ts";

/** Instrumentation scope name of every meter and tracer pgpilot creates. */
export const SCOPE_NAME = "pgpilot";

/**
 * The `pgpilot` meter from the given provider, or from the global one.
 *
 * The OTel metrics API has no proxy provider: a meter taken before the SDK is registered stays
 * a no-op. Interceptors therefore take their meter when `pilot()` attaches them, not earlier —
 * register the SDK before calling `pilot()`, or pass `meterProvider`.
 *
 * @example
 * ```ts
 * const meter = pgpilotMeter(options.meterProvider);
 * const counter = meter.createCounter("pgpilot.slow_queries");
 * ```
 */
export function pgpilotMeter(provider?: MeterProvider): Meter {
  return (provider ?? metrics.getMeterProvider()).getMeter(SCOPE_NAME, VERSION);
}

/**
 * The `pgpilot` tracer from the given provider, or from the global one (a proxy, so a
 * provider registered later still takes effect).
 *
 * @example
 * ```ts
 * const span = pgpilotTracer().startSpan("SELECT users");
 * ```
 */
export function pgpilotTracer(provider?: TracerProvider): Tracer {
  return (provider ?? trace.getTracerProvider()).getTracer(SCOPE_NAME, VERSION);
}
