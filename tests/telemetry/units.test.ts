/**
 * Pure logic of the telemetry helpers: percentile accuracy, eviction policy, the sliding window
 * (with explicit timestamps) and the label-set bound.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Operation } from "../../lib/core/operation.ts";
import { PoolAccounting } from "../../lib/interceptors/monitor/pool-accounting.ts";
import type { LaneInfo } from "../../lib/core/interceptor.ts";
import type { OperationAnalysis } from "../../lib/core/operation.ts";
import { LogHistogram } from "../../lib/shared/log-histogram.ts";
import { errorAttributes, MetricAttributes, OTHER } from "../../lib/telemetry/metric-attributes.ts";
import { PatternStats } from "../../lib/interceptors/monitor/pattern-stats.ts";
import { SlidingWindow } from "../../lib/shared/sliding-window.ts";

const analysis = (fingerprint: string, collection?: string): OperationAnalysis =>
  ({ fingerprint, command: "SELECT", collection, normalized: `select ${fingerprint}` }) as unknown as OperationAnalysis;

describe("LogHistogram", () => {
  test("quantiles within ±9% over six orders of magnitude", () => {
    for (const scale of [0.01, 1, 1000]) {
      const histogram = new LogHistogram();
      for (let i = 1; i <= 1000; i++) histogram.record(i * scale);
      for (const q of [0.5, 0.95, 0.99]) {
        const truth = q * 1000 * scale;
        expect(Math.abs(histogram.quantile(q) - truth) / truth).toBeLessThanOrEqual(0.09);
      }
      expect(histogram.count).toBe(1000);
      expect(histogram.max).toBe(1000 * scale);
    }
  });

  test("empty, single value, merge and reset", () => {
    const a = new LogHistogram();
    expect(a.quantile(0.99)).toBe(0);
    a.record(7);
    expect(a.quantile(0.5)).toBe(7);
    const b = new LogHistogram();
    b.record(100);
    a.merge(b);
    expect([a.count, a.min, a.max, a.sum]).toEqual([2, 7, 100, 107]);
    a.reset();
    expect([a.count, a.quantile(0.5)]).toEqual([0, 0]);
  });
});

describe("PatternStats eviction", () => {
  test("the heaviest patterns by total time survive a flood of one-off statements", () => {
    const stats = new PatternStats(4);
    for (const name of ["a", "b", "c", "d"]) for (let i = 0; i < 10; i++) stats.record(analysis(name), 50, false, 1, false);
    for (let i = 0; i < 1000; i++) {
      stats.record(analysis(`one-off-${i}`), 1, false, 0, false);
      expect(stats.size).toBeLessThanOrEqual(5);
    }
    expect(stats.top(4).map((p) => p.fingerprint).sort()).toEqual(["a", "b", "c", "d"]);
    expect(stats.evicted + stats.size).toBe(1004);
    expect(stats.evictedCalls).toBe(stats.evicted);
    expect(stats.top(1)[0]).toMatchObject({ calls: 10, rows: 10, totalMs: 500, minMs: 50, maxMs: 50 });
  });

  test("a newcomer that becomes heavy survives", () => {
    const stats = new PatternStats(2);
    stats.record(analysis("old"), 10, false, 0, false);
    stats.record(analysis("light"), 1, false, 0, false);
    stats.record(analysis("new"), 100, false, 0, false);
    stats.record(analysis("tiny"), 0.5, false, 0, false);
    expect(stats.top(2).map((p) => p.fingerprint)).toEqual(["new", "old"]);
    expect(stats.size).toBe(2);
  });
});

describe("SlidingWindow", () => {
  test("counts only the last N seconds", () => {
    const window = new SlidingWindow(10, 0);
    for (let second = 0; second < 30; second++) window.record(second * 1000 + 500, second < 20 ? 1 : 100, second < 20);
    const recent = window.snapshot(29_900);
    expect(recent.calls).toBe(10);
    expect(recent.failures).toBe(0);
    expect(recent.latency.quantile(0.5)).toBe(100);
    expect(recent.perSecond).toBe(1);
  });

  test("coverage grows from creation; idle seconds are empty", () => {
    const window = new SlidingWindow(60, 0);
    window.record(1500, 2, true);
    expect(window.snapshot(2000)).toMatchObject({ seconds: 2, calls: 1, failures: 1, failureRate: 1 });
    expect(window.snapshot(200_000)).toMatchObject({ seconds: 60, calls: 0, failureRate: 0 });
  });
});

describe("MetricAttributes", () => {
  const lanes = new Map<string, LaneInfo>([
    ["primary", { name: "primary", max: 5, host: "db", port: 5432, database: "app", probe: async () => {} }],
  ]);

  test("cached per analysis and lane; SQLSTATE and codes as error.type, never messages", () => {
    const sets = new MetricAttributes("main", lanes, 10);
    const users = analysis("u", "users");
    expect(sets.success(users, "primary")).toBe(sets.success(users, "primary"));
    expect(sets.failure(users, "primary", { code: "23505", message: "Key (email)=(x@y) exists" })).toEqual({
      "db.system.name": "postgresql",
      "db.namespace": "app",
      "server.address": "db",
      "server.port": 5432,
      "pgpilot.lane": "primary",
      "db.client.connection.pool.name": "main",
      "db.operation.name": "SELECT",
      "db.collection.name": "users",
      "error.type": "23505",
      "db.response.status_code": "23505",
    });
    expect(errorAttributes({ code: "ECONNRESET" })).toEqual({ type: "ECONNRESET", status: undefined });
    expect(errorAttributes({ code: "weird code with spaces" }).type).toBe(OTHER);
    expect(errorAttributes(new TypeError("boom")).type).toBe(OTHER);
  });

  test("bounded: past the limit the table name goes, past twice the limit everything folds", () => {
    const sets = new MetricAttributes("main", lanes, 3);
    for (let i = 0; i < 100; i++) sets.success(analysis(`f${i}`, `t${i}`), "primary");
    expect(sets.size).toBe(4); // 3 with a table, then one SELECT without
    for (let i = 0; i < 100; i++) sets.failure(analysis(`g${i}`, `t${i}`), "primary", { code: `X${i}` });
    expect(sets.size).toBeLessThanOrEqual(2 * 3 + 1);
    const folded = sets.failure(analysis("h", "t-last"), "primary", { code: "ZZZ" });
    expect(folded["db.operation.name"]).toBe(OTHER);
    expect(folded["error.type"]).toBe(OTHER);
    expect(sets.folded).toBeGreaterThan(0);
  });
});

describe("PoolAccounting", () => {
  const lanes = new Map<string, LaneInfo>(
    ["primary", "replica"].map((name) => [name, { name, max: 50, host: "h", port: 1, database: "d", probe: async () => {} }]),
  );
  const operation = (lane: string) => new Operation("query", analysis("q"), lane, undefined, undefined, undefined);

  test("in flight per lane matches a model for any begin/end order, with two accountings sharing operations (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.boolean(), fc.boolean(), fc.boolean()), { minLength: 20, maxLength: 300 }),
        (steps) => {
          const first = new PoolAccounting(lanes);
          const second = new PoolAccounting(lanes);
          const ops = Array.from({ length: 6 }, (_, i) => operation(i % 3 === 0 ? "replica" : "primary"));
          const open = [new Set<Operation>(), new Set<Operation>()];
          for (const [index, start, useSecond, reroute] of steps) {
            const op = ops[index]!;
            const [accounting, model] = useSecond ? [second, open[1]!] : [first, open[0]!];
            if (start && !model.has(op)) {
              accounting.begin(op);
              model.add(op);
            } else if (!start && model.has(op)) {
              accounting.end(op);
              model.delete(op);
            }
            // Routing after entry (affinity) moves the operation to another lane.
            if (reroute) op.lane = op.lane === "primary" ? "replica" : "primary";
          }
          for (const [accounting, model] of [[first, open[0]!], [second, open[1]!]] as const) {
            const usage = accounting.usage();
            for (const lane of lanes.keys()) {
              expect(usage[lane]!.inFlight).toBe([...model].filter((op) => op.lane === lane).length);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
