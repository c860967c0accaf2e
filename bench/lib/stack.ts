/**
 * The "full stack" the benchmarks compare against raw postgres.js: every interceptor, with a
 * real OpenTelemetry SDK behind metrics and traces (no exporter: what is measured is pgpilot's
 * work, not an exporter's I/O).
 */
import type { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { adaptive, breaker, deadline, monitor, retry, tracing, type Interceptor } from "../../mod.ts";

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
