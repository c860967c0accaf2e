/**
 * Metrics and traces to an OpenTelemetry collector over OTLP/HTTP.
 *
 *   OTLP_URL=http://localhost:4318 DATABASE_URL=postgres://… bun examples/otlp.ts
 *
 * OTLP keeps the semconv names (`db.client.operation.duration`, `db.client.connection.count`, …);
 * only the Prometheus exposition renames what Prometheus rejects (see docs/observability.md).
 * The exporters are not dependencies of pgpilot: install the release line that matches your
 * `@opentelemetry/sdk-metrics` (0.223.x goes with 2.12.x).
 */
import { metrics, trace } from "@opentelemetry/api";
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import postgres from "postgres";
import { createMetricProducer, monitor, pilot, tracing } from "../mod.ts";

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) throw new Error("set DATABASE_URL (e.g. postgres://postgres@localhost:5432/postgres)");
const collector = (process.env.OTLP_URL ?? "http://localhost:4318").replace(/\/$/, "");

/** Import an optional package by a name TypeScript does not resolve at build time. */
async function optional<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch {
    throw new Error(`${name} is not installed: npm i -D ${name}@0.223.0`);
  }
}
const { OTLPTraceExporter } = await optional<{ OTLPTraceExporter: new (config: { url: string }) => SpanExporter }>(
  "@opentelemetry/exporter-trace-otlp-http",
);
const { OTLPMetricExporter } = await optional<
  { OTLPMetricExporter: new (config: { url: string }) => PushMetricExporter }
>("@opentelemetry/exporter-metrics-otlp-http");

// Register both providers before pilot(): interceptors take their meter when attached.
// The reader also collects pgpilot's own duration histograms (aggregated without an SDK call per
// query): give the same producer to monitor().
const metricProducer = createMetricProducer();
const meterProvider = new MeterProvider({
  readers: [
    new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({ url: `${collector}/v1/metrics` }),
      exportIntervalMillis: 10_000,
      metricProducers: [metricProducer],
    }),
  ],
});
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${collector}/v1/traces` }))],
});
metrics.setGlobalMeterProvider(meterProvider);
trace.setGlobalTracerProvider(tracerProvider);

const sql = pilot(postgres(databaseUrl, { max: 5 }), {
  name: "otlp-example",
  interceptors: [tracing(), monitor({ slowQueryMs: 50, metricProducer })],
});

for (let i = 0; i < 20; i++) await sql`select ${i}::int as n`;
await sql.begin(async (tx) => {
  await tx`select pg_sleep(0.06)`; // slow: a span event and pgpilot.slow_queries
  await tx`select now()`;
});
await sql`select * from a_table_that_does_not_exist`.catch(() => {}); // error.type 42P01

console.log(JSON.stringify((sql.stats().monitor as { totals: unknown }).totals));
await sql.close({ timeout: 2 });
await meterProvider.forceFlush(); // push the last metrics before exiting
await tracerProvider.forceFlush();
await meterProvider.shutdown();
await tracerProvider.shutdown();
console.log(`sent to ${collector}`);
