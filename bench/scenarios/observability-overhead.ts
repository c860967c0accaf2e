/**
 * Observability overhead: raw postgres.js vs pgpilot with monitor() + tracing() on a real
 * OpenTelemetry SDK — a MeterProvider with the Prometheus reader (as `pgpilot/prometheus` sets it
 * up; scraped once per round, as Prometheus would) and a BasicTracerProvider with a
 * BatchSpanProcessor whose exporter drops the spans — on `select 1`, 10 and 50 workers, max 10.
 * monitor()'s duration histograms either aggregated inside pgpilot and exported through
 * `createMetricProducer()` ("local histograms", what `pgpilot/prometheus` sets up) or recorded into
 * SDK instruments ("SDK histograms"). Also: pgpilot with no interceptors (what the wrapper itself
 * costs), traces sampled at 1%, each interceptor alone, and both with no SDK registered.
 * Runs on Bun (`npm run bench`) and Node (`npm run bench:node`).
 * Variants run in interleaved rounds, rotating the order; ratios are per round, vs raw.
 */
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";
import process from "node:process";
import postgres from "postgres";
import { compose } from "../../lib/core/compose.ts";
import { attachChain } from "../../lib/core/attach.ts";
import type { Interceptor, LaneInfo } from "../../lib/core/interceptor.ts";
import { monitor } from "../../lib/interceptors/monitor/index.ts";
import { tracing } from "../../lib/interceptors/tracing/index.ts";
import { Operation } from "../../lib/core/operation.ts";
import { pilot } from "../../lib/core/pilot.ts";
import { analyzeTemplate } from "../../lib/sql/cache.ts";
import { createMetricProducer } from "../../lib/telemetry/metric-producer.ts";
import { closedLoop } from "../lib/load.ts";
import type { Scenario, Table } from "../lib/scenario.ts";
import { fmt, median, spread } from "../lib/stats.ts";

const MAX = 10;

interface Runner {
  call: () => Promise<unknown>;
  /** Called between rounds: what a real deployment does in the background (a scrape). */
  tick: () => Promise<void>;
  end: () => Promise<void>;
}

/** Drops every span: the cost measured is pgpilot's plus the SDK's, not an exporter's network. */
const dropSpans: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };

function sdk(sampler?: Sampler) {
  // The reader pgpilot/prometheus builds: the SDK's instruments plus pgpilot's own histograms.
  const metricProducer = createMetricProducer();
  const reader = new PrometheusExporter({ preventServerStart: true, metricProducers: [metricProducer] });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const tracerProvider = new BasicTracerProvider({ sampler, spanProcessors: [new BatchSpanProcessor(dropSpans)] });
  const serializer = new PrometheusSerializer();
  return {
    meterProvider,
    tracerProvider,
    metricProducer,
    scrape: async () => void serializer.serialize((await reader.collect()).resourceMetrics),
    shutdown: async () => {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

function withPilot(url: string, build: (telemetry: ReturnType<typeof sdk>) => Interceptor[], sampler?: Sampler): Runner {
  const telemetry = sdk(sampler);
  const sql = pilot(postgres(url, { max: MAX }), { name: "bench", interceptors: build(telemetry) });
  return {
    call: () => sql`select 1`,
    tick: telemetry.scrape,
    end: async () => {
      await sql.close({ timeout: 1 });
      await telemetry.shutdown();
    },
  };
}

const ONE_PERCENT = () => new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.01) });

const variants: Record<string, (url: string) => Runner> = {
  "postgres.js": (url) => {
    const sql = postgres(url, { max: MAX });
    return { call: () => sql`select 1`, tick: async () => {}, end: () => sql.end({ timeout: 1 }) };
  },
  "monitor (local histograms) + tracing, every query traced": (url) =>
    withPilot(url, ({ meterProvider, tracerProvider, metricProducer }) => [
      tracing({ tracerProvider }),
      monitor({ meterProvider, metricProducer }),
    ]),
  "monitor (local histograms) + tracing, 1% sampled": (url) =>
    withPilot(
      url,
      ({ meterProvider, tracerProvider, metricProducer }) => [tracing({ tracerProvider }), monitor({ meterProvider, metricProducer })],
      ONE_PERCENT(),
    ),
  "monitor (SDK histograms) + tracing, every query traced": (url) =>
    withPilot(url, ({ meterProvider, tracerProvider }) => [tracing({ tracerProvider }), monitor({ meterProvider })]),
  "monitor (local histograms)": (url) =>
    withPilot(url, ({ meterProvider, metricProducer }) => [monitor({ meterProvider, metricProducer })]),
  "monitor (SDK histograms)": (url) => withPilot(url, ({ meterProvider }) => [monitor({ meterProvider })]),
  "tracing, every query traced": (url) => withPilot(url, ({ tracerProvider }) => [tracing({ tracerProvider })]),
  "pgpilot, no interceptors": (url) => withPilot(url, () => []),
  "monitor + tracing, no SDK registered": (url) => withPilot(url, () => [tracing(), monitor()]),
};

/**
 * CPU per operation through the chain alone: a terminal step that resolves at once, no database,
 * no network. Best of `repeats` runs of `count` operations each.
 */
async function chainCost(count: number, repeats: number): Promise<Table> {
  const lanes = new Map<string, LaneInfo>([
    ["primary", { name: "primary", max: 10, host: "127.0.0.1", port: 5432, database: "bench", probe: async () => {} }],
  ]);
  const analysis = analyzeTemplate(((strings: TemplateStringsArray, ..._values: unknown[]) => strings)`select 1`);
  const result = Promise.resolve([{ "?column?": 1 }]);
  const chains: [string, (telemetry: ReturnType<typeof sdk>) => Interceptor[], (() => Sampler)?][] = [
    ["no interceptors", () => []],
    ["tracing + monitor, no SDK registered", () => [tracing(), monitor()]],
    ["tracing, real SDK (every query traced)", ({ tracerProvider }) => [tracing({ tracerProvider })]],
    ["tracing, real SDK (1% sampled)", ({ tracerProvider }) => [tracing({ tracerProvider })], ONE_PERCENT],
    ["monitor, SDK histograms", ({ meterProvider }) => [monitor({ meterProvider })]],
    ["monitor, local histograms", ({ meterProvider, metricProducer }) => [monitor({ meterProvider, metricProducer })]],
    [
      "tracing + monitor, SDK histograms, every query traced",
      ({ meterProvider, tracerProvider }) => [tracing({ tracerProvider }), monitor({ meterProvider })],
    ],
    [
      "tracing + monitor, local histograms, every query traced",
      ({ meterProvider, tracerProvider, metricProducer }) => [tracing({ tracerProvider }), monitor({ meterProvider, metricProducer })],
    ],
    [
      "tracing + monitor, local histograms, 1% sampled",
      ({ meterProvider, tracerProvider, metricProducer }) => [tracing({ tracerProvider }), monitor({ meterProvider, metricProducer })],
      ONE_PERCENT,
    ],
  ];
  const rows: (string | number)[][] = [];
  for (const [name, build, sampler] of chains) {
    const telemetry = sdk(sampler?.());
    const interceptors = build(telemetry);
    attachChain(interceptors, { name: "bench", lanes, primaryLane: "primary", meterProvider: undefined, tracerProvider: undefined });
    const chain = compose(interceptors, (op) => ((op.dispatchedAt = performance.now()), result));
    let best = Infinity;
    for (let repeat = 0; repeat < repeats; repeat++) {
      const start = performance.now();
      for (let i = 0; i < count; i++) await chain(new Operation("query", analysis, "primary", undefined, undefined, undefined));
      best = Math.min(best, ((performance.now() - start) * 1000) / count);
    }
    rows.push([name, fmt(best, 2)]);
    await telemetry.shutdown();
  }
  return {
    title: "CPU per operation through the chain, without a database",
    columns: ["chain", "µs per operation (best run)"],
    rows,
    note: `${count.toLocaleString("en")} operations per run, best of ${repeats}; the terminal step resolves at once. ` +
      "This isolates what pgpilot and the OpenTelemetry SDK add per query from the round trip.",
  };
}

export const scenario: Scenario = {
  name: "observability-overhead",
  title: "Observability overhead: monitor() + tracing() with a real OTel SDK vs raw postgres.js",
  quick: true,
  async run(context) {
    const names = context.quick ? Object.keys(variants).slice(0, 2) : Object.keys(variants);
    const workerCounts = [10, 50];
    const rounds = context.quick ? 2 : 4;
    const roundMs = context.quick ? 1000 : 2000;
    const tables: Table[] = [];
    const data: unknown[] = [];
    let step = 0;
    const steps = workerCounts.length * rounds * names.length;

    for (const workers of workerCounts) {
      const runners = Object.fromEntries(names.map((name) => [name, variants[name]!(context.url)]));
      const throughput: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
      const p99: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
      // Client CPU per query: this process's user+system time over the queries it completed. The
      // server runs in other processes, so this is what pgpilot and the SDK add to the client,
      // and it is much less disturbed than throughput when other work shares the machine.
      const cpu: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
      // Warm up every pool (connections, JIT) before measuring.
      for (const name of names) await closedLoop({ workers, durationMs: 500, call: () => runners[name]!.call() });
      for (let round = 0; round < rounds; round++) {
        const order = names.map((_, i) => names[(i + round) % names.length]!);
        for (const name of order) {
          context.progress(step++ / steps, `select 1, ${workers} workers, ${name}`);
          const before = process.cpuUsage();
          const result = await closedLoop({ workers, durationMs: roundMs, call: () => runners[name]!.call() });
          const used = process.cpuUsage(before);
          cpu[name]!.push((used.user + used.system) / Math.max(1, result.completed));
          throughput[name]!.push(result.throughput);
          p99[name]!.push(result.latency.p99);
          await runners[name]!.tick();
        }
      }
      for (const runner of Object.values(runners)) await runner.end();
      const raw = throughput["postgres.js"]!;
      tables.push({
        title: `select 1, ${workers} workers, max ${MAX} (${rounds} interleaved rounds × ${roundMs / 1000} s, ${context.runtime})`,
        columns: [
          "variant",
          "queries/s (median)",
          "vs postgres.js (median of rounds)",
          "spread",
          "p99 ms",
          "client CPU µs/query",
          "added CPU µs/query",
        ],
        rows: names.map((name) => {
          const ratios = throughput[name]!.map((value, i) => value / raw[i]!);
          const [low, high] = spread(ratios);
          const added = cpu[name]!.map((value, i) => value - cpu["postgres.js"]![i]!);
          return [
            name,
            fmt(median(throughput[name]!), 0),
            `${(median(ratios) * 100).toFixed(1)}%`,
            `${(low * 100).toFixed(0)}–${(high * 100).toFixed(0)}%`,
            fmt(median(p99[name]!), 2),
            fmt(median(cpu[name]!), 1),
            name === "postgres.js" ? "" : fmt(median(added), 1),
          ];
        }),
      });
      data.push({ workers, throughput, p99, cpuMicrosecondsPerQuery: cpu });
    }
    context.progress(1, "chain cost without a database");
    tables.push(await chainCost(context.quick ? 50_000 : 100_000, 3));
    tables.at(-2)!.note = "Real SDK: MeterProvider with the Prometheus reader (collected and serialized after every " +
      "round; it also collects pgpilot's own histograms through createMetricProducer(), as pgpilot/prometheus sets it " +
      "up — \"local histograms\" rows use it, \"SDK histograms\" rows record into SDK instruments) and BasicTracerProvider with a BatchSpanProcessor whose exporter drops spans; every query is traced " +
      "unless the row says 1% sampled (ParentBased(TraceIdRatioBased(0.01))). The ratio is each round's throughput " +
      "divided by postgres.js's in the same round. Client CPU is this process's user+system time per completed " +
      "query; \"added\" is the per-round difference to postgres.js (median).";
    return { tables, data };
  },
};
