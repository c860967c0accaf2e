/**
 * What telemetry must never do: leak a password or a parameter value (scrape, spans, stats,
 * health, logs, events), grow without bound under generated SQL, or fail a query when a meter
 * or an exporter breaks.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { type DiagLogger, diag, DiagLogLevel } from "@opentelemetry/api";
import postgres from "postgres";
import { pilot } from "../../mod.ts";
import { adaptive } from "../../lib/interceptors/adaptive/index.ts";
import { breaker } from "../../lib/interceptors/breaker/index.ts";
import { monitor } from "../../lib/interceptors/monitor/index.ts";
import { tracing } from "../../lib/interceptors/tracing/index.ts";
import { metricsHandler } from "../../lib/prometheus.ts";
import { METRIC } from "../../lib/telemetry/names.ts";
import { testUrl } from "../support/db.ts";
import { Cleanup, metricReader, tracesHarness } from "../support/kit.ts";

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

test("a sentinel password and a sentinel parameter never appear in scrape, spans, stats, health, events or logs", async () => {
  const password = "SentinelPassw0rd-7f3a9c";
  const value = "SentinelValue-b41e2d";
  const lines: string[] = [];
  const capture = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  const logger: DiagLogger = { error: capture, warn: capture, info: capture, debug: capture, verbose: capture };
  diag.setLogger(logger, DiagLogLevel.ALL);
  const consoleMethods = ["log", "info", "warn", "error", "debug"] as const;
  const originals = consoleMethods.map((method) => console[method]);
  for (const method of consoleMethods) console[method] = capture;
  const metrics = metricsHandler({ global: false });
  const traces = tracesHarness();
  const url = new URL(testUrl());
  url.password = password; // the test server trusts loopback: the password is carried, never needed
  const events: unknown[] = [];
  try {
    const monitoring = monitor({ slowQueryMs: 0, meterProvider: metrics.meterProvider });
    monitoring.onSlowQuery((event) => events.push(event));
    monitoring.onSlowQuery(() => {
      throw new Error("listener failure");
    });
    const sql = pilot(postgres(url.toString(), { max: 2, onnotice: () => {} }), {
      name: "main",
      interceptors: [
        tracing({ tracerProvider: traces.tracerProvider, sqlCommenter: true }),
        monitoring,
        breaker({ meterProvider: metrics.meterProvider }),
        adaptive({ meterProvider: metrics.meterProvider }),
      ],
    });
    cleanup.track(sql);
    expect((sql.options as { pass?: unknown }).pass).toBe(password);
    await sql`select ${value}::text as echoed`;
    // PostgreSQL puts the value in this error's message: "invalid input syntax for type integer: …"
    const failure = await sql`select ${value}::int`.execute().catch((error) => error);
    expect(String(failure.message)).toContain(value);
    await sql.unsafe(`select '${value}' as inlined`);
    await sql.unsafe(`select '${value}'::int`).execute().catch(() => {});
    await sql.begin(async (tx) => {
      await tx`select ${value} as inside`;
    });
    const outputs: Record<string, string> = {
      scrape: await metrics.scrape(),
      spans: JSON.stringify(traces.spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status }))),
      stats: JSON.stringify(sql.stats()),
      patterns: JSON.stringify(monitoring.patterns({ includeText: true })),
      health: JSON.stringify(sql.health()),
      events: JSON.stringify(events),
      logs: lines.join("\n"),
    };
    expect(traces.spans().length).toBe(6);
    expect(events.length).toBe(5);
    expect(lines.some((line) => line.includes("listener failure"))).toBe(true);
    for (const [where, text] of Object.entries(outputs)) {
      expect({ where, leaks: text.includes(password) || text.includes(value) }).toEqual({ where, leaks: false });
    }
  } finally {
    originals.forEach((original, index) => (console[consoleMethods[index]!] = original));
    diag.disable();
    await metrics.shutdown();
    await traces.shutdown();
  }
});

test("100 000 distinct unsafe() statements: pattern memory and label sets stay bounded", async () => {
  const metrics = metricReader();
  const monitoring = monitor({ maxPatterns: 200, maxAttributeSets: 50, topPatterns: 3, meterProvider: metrics.meterProvider });
  const sql = pilot(postgres(testUrl(), { max: 8, onnotice: () => {} }), { interceptors: [monitoring] });
  cleanup.defer(() => metrics.shutdown());
  cleanup.track(sql);
  const total = 100_000;
  const workers = 32;
  let next = 0;
  let failed = 0;
  let maxTracked = 0;
  let maxSets = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      // Distinct text and fingerprint every time; one in fifty names a distinct (missing) table
      // (2000 tables, 40 times the bound), so label sets would grow if nothing bounded them.
      const text = i % 50 === 0 ? `select 1 from missing_table_${i}` : `select ${i} as c${i}`;
      try {
        await sql.unsafe(text);
      } catch {
        failed++;
      }
      if (i % 1000 === 0) {
        const stats = monitoring.stats();
        maxTracked = Math.max(maxTracked, stats.patterns.tracked);
        maxSets = Math.max(maxSets, stats.attributeSets.size);
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  const stats = monitoring.stats();
  expect(failed).toBe(total / 50);
  expect(stats.totals.queries).toBe(total);
  expect(Math.max(maxTracked, stats.patterns.tracked)).toBeLessThanOrEqual(250);
  expect(stats.patterns.evicted).toBeGreaterThan(total - 300);
  expect(stats.patterns.evictedCalls + stats.patterns.top.length).toBeLessThanOrEqual(total);
  expect(Math.max(maxSets, stats.attributeSets.size)).toBeLessThanOrEqual(2 * 50 + 2);
  const points = await metrics.points(METRIC.OPERATION_DURATION);
  expect(points.length).toBeLessThanOrEqual(2 * 50 + 2);
  const counted = points.reduce((sum, point) => sum + (point.value as { count: number }).count, 0);
  expect(counted).toBe(total); // nothing lost to the bound: folded, not dropped
}, 120_000);

describe("a broken meter or exporter never fails a query", () => {
  test("instruments that throw on every call", async () => {
    const boom = () => {
      throw new Error("meter failure");
    };
    const instrument = { record: boom, add: boom, addCallback: boom, removeCallback: boom };
    const meter = new Proxy({}, {
      get: (_target, key) => (key === "addBatchObservableCallback" || key === "removeBatchObservableCallback" ? boom : () => instrument),
    });
    const monitoring = monitor({ meterProvider: { getMeter: () => meter as never }, slowQueryMs: 0 });
    const sql = pilot(postgres(testUrl(), { max: 2, onnotice: () => {} }), { interceptors: [monitoring] });
    cleanup.track(sql);
    const [row] = await sql`select 6 * 7 as answer`;
    expect(row!.answer).toBe(42);
    await sql.begin((tx) => tx`select 1`);
    await expect(sql`select nope`.execute()).rejects.toMatchObject({ code: "42703" });
    expect(monitoring.stats().totals).toMatchObject({ queries: 3, transactions: 1, errors: 1 });
  });

  test("a queue whose pending() throws: collection and stats still work", async () => {
    const metrics = metricReader();
    const monitoring = monitor({ meterProvider: metrics.meterProvider });
    const brokenQueue = {
      name: "adaptive",
      intercept: (_op: unknown, next: () => Promise<unknown>) => next(),
      pending: () => {
        throw new Error("queue failure");
      },
    };
    const sql = pilot(postgres(testUrl(), { max: 1, onnotice: () => {} }), {
      interceptors: [monitoring, brokenQueue as never],
    });
    cleanup.defer(() => metrics.shutdown());
    cleanup.track(sql);
    await sql`select 1`;
    expect((await metrics.points(METRIC.PENDING_REQUESTS)).map((point) => point.value)).toEqual([0]);
    expect(monitoring.stats().pool.primary).toEqual({ max: 1, inFlight: 0, used: 0, idle: 1, pending: 0 });
  });
});
