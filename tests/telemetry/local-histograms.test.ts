/**
 * monitor()'s locally aggregated histograms: for any values and attribute sets, what
 * createMetricProducer() hands a reader equals what the SDK's own histogram instrument exports
 * (same buckets, count, sum, min, max and attributes). Real SDK reader, no database.
 */
import { describe, expect, test } from "bun:test";
import type { Attributes } from "@opentelemetry/api";
import type { DataPoint, Histogram } from "@opentelemetry/sdk-metrics";
import fc from "fast-check";
import { LocalHistogram } from "../../lib/telemetry/local-histogram.ts";
import { createMetricProducer } from "../../lib/telemetry/metric-producer.ts";
import { DURATION_BUCKETS_SECONDS } from "../../lib/telemetry/names.ts";
import { metricReader } from "../support/kit.ts";

const SETS: Attributes[] = [
  Object.freeze({ "db.operation.name": "SELECT", "pgpilot.lane": "primary" }),
  Object.freeze({ "db.operation.name": "INSERT", "pgpilot.lane": "primary", "error.type": "23505" }),
  Object.freeze({ "db.operation.name": "SELECT", "pgpilot.lane": "replica" }),
];

/** Values around and on every boundary, plus zero, tiny and huge ones. */
const duration = fc.oneof(
  fc.constantFrom(0, ...DURATION_BUCKETS_SECONDS),
  fc.double({ min: 0, max: 20, noNaN: true }),
  fc.constantFrom(...DURATION_BUCKETS_SECONDS).map((boundary) => boundary * (1 + Number.EPSILON)),
);

async function exported(records: [number, number][]) {
  const reader = metricReader();
  const producer = reader.metricProducer;
  const sdk = reader.meterProvider.getMeter("test").createHistogram("sdk", {
    unit: "s",
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_SECONDS] },
  });
  const local = new LocalHistogram({ name: "local", unit: "s", description: "", boundaries: DURATION_BUCKETS_SECONDS });
  const unregister = producer.register([local]);
  for (const [value, set] of records) {
    sdk.record(value, SETS[set]);
    local.record(value, SETS[set]);
  }
  const resourceMetrics = await reader.collect(); // throws a collection error
  const metrics = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
  const points = (name: string) =>
    (metrics.find((metric) => metric.descriptor.name === name)?.dataPoints ?? []) as DataPoint<Histogram>[];
  const comparable = (list: DataPoint<Histogram>[]) =>
    list
      .map((point) => ({ attributes: point.attributes, ...point.value, sum: Math.round(point.value.sum! * 1e9) }))
      .sort((a, b) => JSON.stringify(a.attributes).localeCompare(JSON.stringify(b.attributes)));
  unregister();
  await reader.shutdown();
  return { sdk: comparable(points("sdk")), local: comparable(points("local")), metrics };
}

describe("LocalHistogram through createMetricProducer()", () => {
  test("exports exactly what the SDK's histogram exports, for any values (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(duration, fc.integer({ min: 0, max: SETS.length - 1 })), { maxLength: 200 }), async (records) => {
        const { sdk, local } = await exported(records);
        expect(local).toEqual(sdk);
      }),
      { numRuns: 100 },
    );
  });

  test("descriptor, temporality and an unused histogram left out", async () => {
    const { metrics } = await exported([[0.002, 0]]);
    const local = metrics.find((metric) => metric.descriptor.name === "local")!;
    expect(local.descriptor).toMatchObject({ name: "local", unit: "s" });
    expect(local.aggregationTemporality).toBe(1); // cumulative, like Prometheus wants
    const empty = createMetricProducer();
    empty.register([new LocalHistogram({ name: "unused", unit: "s", description: "", boundaries: [1] })]);
    expect((await empty.collect()).resourceMetrics.scopeMetrics).toEqual([]);
  });

  test("a retired histogram's counts stay exported, merged with a live one of the same series", async () => {
    const producer = createMetricProducer();
    const make = () => new LocalHistogram({ name: "d", unit: "s", description: "", boundaries: [0.01, 1] });
    const [closed, live] = [make(), make()];
    closed.record(0.005, { lane: "x" });
    producer.register([closed])(); // registered, then retired (a closed monitor)
    closed.record(5, { lane: "x" }); // after retirement: not exported
    producer.register([live]);
    live.record(0.5, { lane: "x" });
    const collect = async () =>
      (await producer.collect()).resourceMetrics.scopeMetrics[0]!.metrics[0]!.dataPoints as DataPoint<Histogram>[];
    for (let round = 0; round < 2; round++) {
      // Twice: collecting must not fold the live counts into the retired ones.
      const points = await collect();
      expect(points).toHaveLength(1);
      expect(points[0]!.value).toMatchObject({ count: 2, min: 0.005, max: 0.5, buckets: { counts: [1, 1, 0] } });
    }
  });

  test("two sources with the same attribute set add up", async () => {
    const producer = createMetricProducer();
    const make = () => new LocalHistogram({ name: "d", unit: "s", description: "", boundaries: [0.01, 1] });
    const [a, b] = [make(), make()];
    // Equal content, different objects: merged like one SDK series.
    a.record(0.005, { lane: "x" });
    b.record(0.5, { lane: "x" });
    producer.register([a]);
    producer.register([b]);
    const collect = async () =>
      (await producer.collect()).resourceMetrics.scopeMetrics[0]!.metrics[0]!.dataPoints as DataPoint<Histogram>[];
    const points = await collect();
    expect(points).toHaveLength(1);
    expect(points[0]!.value).toMatchObject({ count: 2, min: 0.005, max: 0.5, buckets: { counts: [1, 1, 0] } });
  });

  test("negative and NaN values are dropped and counted, like the SDK ignores them", () => {
    const histogram = new LocalHistogram({ name: "d", unit: "s", description: "", boundaries: [1] });
    const set = Object.freeze({});
    histogram.record(-1, set);
    histogram.record(Number.NaN, set);
    histogram.record(0.5, set);
    expect(histogram.dropped).toBe(2);
    expect(histogram.series.get(set)!.count).toBe(1);
  });
});
