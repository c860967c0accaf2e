/**
 * Real OpenTelemetry SDKs with in-memory sinks, for the observability tests.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { type Context, type ContextManager, ROOT_CONTEXT } from "@opentelemetry/api";
import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { createMetricProducer, type PgpilotMetricProducer } from "../../lib/telemetry/metric-producer.ts";

/** A MetricReader we collect() by hand; it also collects pgpilot's locally aggregated histograms. */
class ManualReader extends MetricReader {
  constructor(producer: PgpilotMetricProducer) {
    super({ metricProducers: [producer] });
  }

  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

export interface MetricsHarness {
  meterProvider: MeterProvider;
  /** Collected by the reader: `monitor({ metricProducer })` aggregates its histograms into it. */
  metricProducer: PgpilotMetricProducer;
  collect(): Promise<ResourceMetrics>;
  /** Data points of one metric, by name, after a fresh collection. */
  points(name: string): Promise<DataPoint<unknown>[]>;
  shutdown(): Promise<void>;
}

export function metricsHarness(): MetricsHarness {
  const metricProducer = createMetricProducer();
  const reader = new ManualReader(metricProducer);
  const meterProvider = new MeterProvider({ readers: [reader] });
  const collect = async () => {
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length > 0) throw errors[0];
    return resourceMetrics;
  };
  return {
    meterProvider,
    metricProducer,
    collect,
    async points(name) {
      const metrics = await collect();
      const found = metrics.scopeMetrics.flatMap((scope) => scope.metrics).filter((m) => m.descriptor.name === name);
      return found.flatMap((metric) => metric.dataPoints as DataPoint<unknown>[]);
    },
    shutdown: () => meterProvider.shutdown(),
  };
}

/** Sum of histogram counts over data points matching `where`. */
export function histogramCount(points: DataPoint<unknown>[], where: Record<string, unknown> = {}): number {
  return points
    .filter((point) => Object.entries(where).every(([key, value]) => point.attributes[key] === value))
    .reduce((sum, point) => sum + (point.value as Histogram).count, 0);
}

export interface TracesHarness {
  tracerProvider: BasicTracerProvider;
  exporter: InMemorySpanExporter;
  spans(): ReadableSpan[];
  reset(): void;
  shutdown(): Promise<void>;
}

export function tracesHarness(extra: SpanProcessor[] = []): TracesHarness {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [...extra, new SimpleSpanProcessor(exporter)] });
  return {
    tracerProvider,
    exporter,
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    shutdown: () => tracerProvider.shutdown(),
  };
}

/**
 * A context manager on AsyncLocalStorage (what @opentelemetry/context-async-hooks does), so the
 * active span follows async work: postgres.js starts a query a microtask after `.then()`.
 */
export class AsyncContextManager implements ContextManager {
  #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(context, () => fn.call(thisArg, ...args));
  }
  bind<T>(_context: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#storage.disable();
    return this;
  }
}
