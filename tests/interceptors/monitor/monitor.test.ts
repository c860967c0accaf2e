/**
 * monitor(): semconv metrics with the real OTel SDK, pool accounting, slow queries, per-pattern
 * stats, stats() and health(), against the real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { ConfigError, pilot } from "../../../mod.ts";
import type { Interceptor } from "../../../lib/core/interceptor.ts";
import { monitor, type SlowQueryEvent } from "../../../lib/interceptors/monitor/index.ts";
import { METRIC } from "../../../lib/telemetry/names.ts";
import { testUrl } from "../../support/db.ts";
import { cleanupAfterEach, histogramCount, metricReader, until } from "../../support/kit.ts";

// A fixed name: the table must be written in the SQL text for db.collection.name to be known.
const table = "obs_monitor_items";
const admin = postgres(testUrl(), { max: 2, onnotice: () => {} });
const cleanup = cleanupAfterEach();

let histograms: "sdk" | "local" = "sdk";

function monitored(options: Parameters<typeof monitor>[0] = {}, extra: Interceptor[] = [], max = 4) {
  const metrics = metricReader();
  const metricProducer = histograms === "local" ? metrics.metricProducer : false;
  const monitoring = monitor({ meterProvider: metrics.meterProvider, metricProducer, ...options });
  const sql = pilot(postgres(testUrl(), { max, onnotice: () => {} }), {
    name: "main",
    interceptors: [monitoring, ...extra],
  });
  cleanup.defer(() => metrics.shutdown());
  cleanup.track(sql);
  return { sql, monitoring, metrics };
}

beforeAll(async () => {
  await admin.unsafe(`drop table if exists ${table}`);
  await admin.unsafe(`create table ${table} (id int primary key, name text)`);
});
afterAll(async () => {
  await admin.unsafe(`drop table if exists ${table}`);
  await admin.end({ timeout: 1 });
});

describe("options", () => {
  test("bad options throw a ConfigError naming each field", () => {
    expect(() => monitor({ slowQueryMs: -1, maxPatterns: 0 })).toThrow(ConfigError);
    try {
      monitor({ slowQueryMs: -1, maxPatterns: 1.5, health: { errorRateFailed: 2 } } as never);
    } catch (error) {
      const message = String(error);
      expect(message).toContain("slowQueryMs");
      expect(message).toContain("maxPatterns");
      expect(message).toContain("health.errorRateFailed");
    }
    expect(() => monitor({ bogus: true } as never)).toThrow(/bogus/);
    expect(() => monitor({ meterProvider: {} as never })).toThrow(/meterProvider/);
  });
});

// Both aggregations must export the same data: SDK instruments and pgpilot's own histograms.
for (const mode of ["sdk", "local"] as const) {
  describe(`histograms: "${mode}"`, () => {
    beforeAll(() => void (histograms = mode));
    afterAll(() => void (histograms = "sdk"));
    describe("operation duration histogram", () => {
      test("N queries → count N with the semconv attributes", async () => {
        const { sql, metrics } = monitored();
        const n = 25;
        for (let i = 0; i < n; i++) await sql`select id from obs_monitor_items where id = ${i}`;
        const points = await metrics.points(METRIC.OPERATION_DURATION);
        expect(histogramCount(points)).toBe(n);
        expect(points).toHaveLength(1);
        const url = new URL(testUrl());
        expect(points[0]!.attributes).toEqual({
          "db.system.name": "postgresql",
          "db.namespace": url.pathname.slice(1) || expect.any(String),
          "db.operation.name": "SELECT",
          "db.collection.name": table,
          "server.address": url.hostname,
          "server.port": Number(url.port),
          "pgpilot.lane": "primary",
          "db.client.connection.pool.name": "main",
        });
      });

      test("errors carry error.type and db.response.status_code (SQLSTATE)", async () => {
        const { sql, metrics, monitoring } = monitored();
        await expect(sql`select * from ${sql(table + "_missing")}`.execute()).rejects.toMatchObject({ code: "42P01" });
        await sql`insert into obs_monitor_items (id, name) values (1000, 'a')`;
        await expect(sql`insert into obs_monitor_items (id, name) values (1000, 'b')`.execute()).rejects.toMatchObject({ code: "23505" });
        const points = await metrics.points(METRIC.OPERATION_DURATION);
        expect(histogramCount(points)).toBe(3);
        expect(histogramCount(points, { "error.type": "42P01", "db.response.status_code": "42P01" })).toBe(1);
        expect(histogramCount(points, { "error.type": "23505", "db.response.status_code": "23505", "db.operation.name": "INSERT" }))
          .toBe(1);
        expect(histogramCount(points, { "db.operation.name": "INSERT", "error.type": undefined })).toBe(1);
        const stats = monitoring.stats();
        expect(stats.totals.errors).toBe(2);
        expect(stats.errors.client).toBe(2);
        await sql`delete from ${sql(table)} where id = 1000`;
      });

      test("transactions: children are operations, the transaction is one use of a connection", async () => {
        const { sql, metrics, monitoring } = monitored();
        await sql.begin(async (tx) => {
          await tx`insert into obs_monitor_items (id, name) values (2000, 'x')`;
          await tx`delete from obs_monitor_items where id = 2000`;
        });
        expect(histogramCount(await metrics.points(METRIC.OPERATION_DURATION))).toBe(2);
        expect(histogramCount(await metrics.points(METRIC.USE_TIME))).toBe(1);
        // No queue in the chain: postgres.js's own wait is invisible, so no wait_time is claimed.
        expect(await metrics.points(METRIC.WAIT_TIME)).toEqual([]);
        const stats = monitoring.stats();
        expect(stats.totals).toMatchObject({ queries: 2, transactions: 1, errors: 0, rows: 2 });
      });

      test("a failing query inside a failing transaction counts once", async () => {
        const { sql, monitoring } = monitored();
        await expect(sql.begin((tx) => tx`select 1/0`)).rejects.toMatchObject({ code: "22012" });
        const stats = monitoring.stats();
        expect(stats.totals.errors).toBe(1);
        expect(stats.errors.client).toBe(1);
      });
    });

    describe("pool accounting", () => {
      test("used / idle / pending while work is in flight, back to idle after", async () => {
        let waiting = 0;
        const fakeQueue = { name: "queue", intercept: (_op: unknown, next: () => Promise<unknown>) => next(), provides: { queueDepth: () => waiting } };
        const { sql, metrics, monitoring } = monitored({}, [fakeQueue as unknown as Interceptor], 5);
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const transaction = sql.begin(async (tx) => {
          await tx`select 1`;
          await gate;
        });
        const sleeper = sql`select pg_sleep(0.3)`.execute();
        // Wait until both are on the server (a fact, not a timing guess).
        await until(() => monitoring.stats().pool.primary!.inFlight >= 2, { message: "both operations on the server" });
        waiting = 1;
        const usage = monitoring.stats().pool.primary!;
        expect(usage).toEqual({ max: 5, inFlight: 2, used: 1, idle: 4, pending: 1 });
        const counts = await metrics.points(METRIC.CONNECTION_COUNT);
        const used = counts.find((p) => p.attributes["db.client.connection.state"] === "used");
        const idle = counts.find((p) => p.attributes["db.client.connection.state"] === "idle");
        expect([used?.value, idle?.value]).toEqual([1, 4]);
        expect((await metrics.points(METRIC.PENDING_REQUESTS))[0]!.value).toBe(1);
        expect((await metrics.points(METRIC.CONNECTION_MAX))[0]!.value).toBe(5);
        waiting = 0;
        expect(monitoring.stats().pool.primary!.used).toBe(2);
        release();
        await Promise.all([transaction, sleeper]);
        expect(monitoring.stats().pool.primary).toEqual({ max: 5, inFlight: 0, used: 0, idle: 5, pending: 0 });
        // With a queue in the chain, each root operation that reached the pool has a wait and a use.
        expect(histogramCount(await metrics.points(METRIC.WAIT_TIME))).toBe(2);
        expect(histogramCount(await metrics.points(METRIC.USE_TIME))).toBe(2);
      });
    });
  });
}

describe("slow queries", () => {
  test("counter, event with no values, throwing listener harmless, dispose", async () => {
    const { sql, metrics, monitoring } = monitored({ slowQueryMs: 40 });
    const events: SlowQueryEvent[] = [];
    const subscription = monitoring.onSlowQuery((event) => events.push(event));
    monitoring.onSlowQuery(() => {
      throw new Error("listener bug");
    });
    await sql`select pg_sleep(${0.06})`;
    await sql`select 1`;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ command: "SELECT", lane: "primary", thresholdMs: 40, failed: false, text: "select pg_sleep($1)" });
    expect(events[0]!.durationMs).toBeGreaterThanOrEqual(40);
    const slow = await metrics.points("pgpilot.slow_queries");
    expect(slow.reduce((sum, p) => sum + (p.value as number), 0)).toBe(1);
    subscription.dispose();
    await sql`select pg_sleep(0.05)`;
    expect(events).toHaveLength(1);
    expect(monitoring.stats().slow).toEqual({ count: 2, share: 0.667 });
  });
});

describe("stats()", () => {
  test("totals, window rate, percentiles and top patterns by total time", async () => {
    const { sql, monitoring } = monitored({ topPatterns: 2 });
    for (let i = 0; i < 10; i++) await sql`select ${i}::int as n`;
    await sql`select pg_sleep(0.02)`;
    await sql.unsafe("select 42 as answer");
    const stats = monitoring.stats();
    expect(stats.totals.queries).toBe(12);
    expect(stats.window.queriesPerSecond).toBeGreaterThan(0);
    expect(stats.window.operations).toBe(12);
    expect(stats.latency.p99Ms).toBeGreaterThanOrEqual(stats.latency.p50Ms);
    expect(stats.patterns.tracked).toBe(3);
    expect(stats.patterns.top).toHaveLength(2);
    expect(stats.patterns.top[0]!.totalMs).toBeGreaterThanOrEqual(stats.patterns.top[1]!.totalMs);
    const counted = monitoring.patterns({ includeText: true });
    const select = counted.find((p) => p.text === "select ?::int as n");
    expect(select?.calls).toBe(10);
    expect(select?.rows).toBe(10);
    expect(counted.find((p) => p.text === "select ? as answer")).toBeDefined();
    expect(JSON.parse(JSON.stringify(stats))).toEqual(stats);
  });
});

describe("health()", () => {
  test("healthy, then failed on timeouts; client errors do not count", async () => {
    const metrics = metricReader();
    const monitoring = monitor({
      meterProvider: metrics.meterProvider,
      health: { minCalls: 5, errorRateDegraded: 0.2, errorRateFailed: 0.5, latencyMs: 10_000 },
    });
    const sql = pilot(postgres(testUrl(), { max: 5, onnotice: () => {} }), {
      interceptors: [monitoring],
    });
    cleanup.defer(() => metrics.shutdown());
    cleanup.track(sql);
    for (let i = 0; i < 5; i++) await sql`select 1`;
    for (let i = 0; i < 5; i++) await sql`select nope`.catch(() => {});
    expect(sql.health().status).toBe("healthy");
    // One simple-protocol message is one implicit transaction: SET LOCAL applies to its sleep only.
    const timedOut = () => sql.unsafe("set local statement_timeout = 30; select pg_sleep(1)").execute();
    const results = await Promise.allSettled(Array.from({ length: 10 }, timedOut));
    expect(results.every((r) => r.status === "rejected" && (r.reason as { code?: string }).code === "57014")).toBe(true);
    const health = sql.health();
    expect(health.status).toBe("failed");
    expect(health.reasons.join(" ")).toMatch(/monitor: error rate 50% over the last \d+ s \(10 of 20/);
    expect(monitoring.stats().errors).toMatchObject({ timeout: 10, client: 5 });
  });

  test("latency above the threshold degrades", async () => {
    const { sql } = monitored({ health: { minCalls: 2, latencyMs: 5 } });
    for (let i = 0; i < 3; i++) await sql`select pg_sleep(0.02)`;
    const health = sql.health();
    expect(health.status).toBe("degraded");
    expect(health.reasons[0]).toMatch(/^monitor: p95 latency \d+ ms over the last \d+ s is above 5 ms$/);
  });
});
