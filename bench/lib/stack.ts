/**
 * The "full stack" the benchmarks compare against raw postgres.js: every interceptor, with a
 * real OpenTelemetry SDK behind metrics and traces (no exporter: what is measured is pgpilot's
 * work, not an exporter's I/O).
 */
import type { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { adaptive, affinity, breaker, deadline, monitor, retry, tracing, type Interceptor } from "../../mod.ts";

export function fullStack(providers: { meterProvider: MeterProvider; tracerProvider: BasicTracerProvider }): Interceptor[] {
  const { meterProvider, tracerProvider } = providers;
  return [
    tracing({ tracerProvider }),
    monitor({ meterProvider }),
    deadline({ timeoutMs: 5000 }),
    retry({ meterProvider }),
    breaker({ meterProvider }),
    adaptive({ meterProvider, pipelineDepth: 16 }),
  ];
}
fullStack.description = "tracing, monitor, deadline 5 s, retry, breaker, adaptive (pipelineDepth 16), real SDK MeterProvider and BasicTracerProvider without exporters";

/**
 * The README's recommended stack without tracing, every interceptor at its defaults
 * (monitor, affinity, deadline, retry, breaker, adaptive). Metrics go to the provider given to
 * `pilot()`.
 */
export function recommendedWithoutTracing(): Interceptor[] {
  return [monitor(), affinity(), deadline(), retry(), breaker(), adaptive()];
}
recommendedWithoutTracing.description = "monitor, affinity, deadline, retry, breaker, adaptive, all at their defaults, real SDK MeterProvider without exporter";
