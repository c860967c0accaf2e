/**
 * Real OpenTelemetry SDKs with in-memory sinks (metrics collected by hand, finished spans kept),
 * and a context manager. Part of the test kit: import it through ./kit.ts.
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

/** One data point, reduced to what tests compare. */
export interface MetricValue {
  attributes: Record<string, unknown>;
  value: number;
}

export interface MetricReaderKit {
  meterProvider: MeterProvider;
  /** Collected by the reader: `monitor({ metricProducer })` aggregates its histograms into it. */
  metricProducer: PgpilotMetricProducer;
  /** A fresh collection; throws the first collection error. */
  collect(): Promise<ResourceMetrics>;
  /** Data points of one metric, by name, after a fresh collection. */
  points(name: string): Promise<DataPoint<unknown>[]>;
  /** One fresh collection: every metric's points as `{ attributes, value }`, by metric name. */
  values(): Promise<Map<string, MetricValue[]>>;
  shutdown(): Promise<void>;
}

/**
 * A real OTel SDK MeterProvider whose reader is collected by hand (no timers, no exporter), with
 * a pgpilot metric producer attached. Pass `meterProvider` (and `metricProducer`) to the code
 * under test, then read what it recorded.
 */
export function metricReader(): MetricReaderKit {
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
    async values() {
      const byName = new Map<string, MetricValue[]>();
      for (const scope of (await collect()).scopeMetrics) {
        for (const metric of scope.metrics) {
          const points = byName.get(metric.descriptor.name) ?? [];
          for (const point of metric.dataPoints) points.push({ attributes: point.attributes, value: point.value as number });
          byName.set(metric.descriptor.name, points);
        }
      }
      return byName;
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
