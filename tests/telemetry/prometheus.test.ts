/**
 * pgpilot/prometheus: a real scrape after real traffic through the whole recommended chain
 * contains every metric the dashboard and the alert rules use (parsed from the files); promtool
 * checks and tests the rules; the HTTP server and the health handler answer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AggregationType, MeterProvider } from "@opentelemetry/sdk-metrics";
import postgres from "postgres";
import { pilot } from "../../mod.ts";
import { adaptive } from "../../lib/interceptors/adaptive/index.ts";
import { affinity } from "../../lib/interceptors/affinity/index.ts";
import { breaker } from "../../lib/interceptors/breaker/index.ts";
import { deadline } from "../../lib/interceptors/deadline/index.ts";
import { monitor, type MonitorStats } from "../../lib/interceptors/monitor/index.ts";
import { retry } from "../../lib/interceptors/retry/index.ts";
import { tracing } from "../../lib/interceptors/tracing/index.ts";
import { healthHandler, metricsHandler, servePrometheus } from "../../lib/prometheus.ts";
import { testUrl } from "../support/db.ts";
import { tracesHarness } from "../support/kit.ts";

const dir = join(import.meta.dir, "../../examples/observability");
const metrics = metricsHandler({ global: false });
const traces = tracesHarness();
const meterProvider = metrics.meterProvider;
const sql = pilot(postgres(testUrl(), { max: 2, onnotice: () => {} }), {
  name: "main",
  interceptors: [
    tracing({ tracerProvider: traces.tracerProvider }),
    monitor({ slowQueryMs: 30, meterProvider }),
    affinity({ meterProvider }),
    deadline({ timeoutMs: 5000 }),
    retry({ meterProvider }),
    breaker({ meterProvider }),
    adaptive({ algorithm: "fixed", min: 1, max: 1, initial: 1, queueTimeoutMs: 20, meterProvider }),
  ],
});

/** Where a pilot's monitor() aggregates its duration histograms. */
const histogramsOf = (pilotSql: { stats(): Record<string, unknown> }) => (pilotSql.stats().monitor as MonitorStats).histograms;

/** Real traffic: plain, failing, slow, transactional, and one queue timeout. */
async function traffic(): Promise<void> {
  for (let i = 0; i < 5; i++) await sql`select ${i}::int as n`;
  await sql`select * from missing_table_for_scrape`.catch(() => {});
  await sql`select pg_sleep(0.04)`;
  await sql.begin(async (tx) => {
    await tx`select 1`;
  });
  const results = await Promise.allSettled([sql`select pg_sleep(0.2)`.execute(), sql`select 1`.execute()]);
  expect(results.map((r) => r.status === "rejected" ? (r.reason as { code?: string }).code : "ok")).toEqual([
    "ok",
    "POOL_TIMEOUT",
  ]);
}

beforeAll(traffic);
afterAll(async () => {
  await sql.close({ timeout: 1 });
  await metrics.shutdown();
  await traces.shutdown();
});

/** Every metric name in a PromQL expression (pgpilot's and semconv's; label names excluded). */
function metricNames(expression: string): string[] {
  const withoutLabels = expression
    .replace(/\{[^}]*\}/g, "{}") // label matchers
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "") // label lists
    .replace(/label_values\(([^,()]+),[^)]*\)/g, "$1"); // Grafana: label_values(metric, label)
  return [...withoutLabels.matchAll(/\b((?:db_client|pgpilot)_[a-z0-9_]+)\b/g)].map((match) => match[1]!);
}

function dashboardExpressions(): string[] {
  const dashboard = JSON.parse(readFileSync(join(dir, "grafana-dashboard.json"), "utf8"));
  const expressions: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === "object") {
      for (const [key, value] of Object.entries(node)) {
        if ((key === "expr" || key === "definition") && typeof value === "string") expressions.push(value);
        else visit(value);
      }
    }
  };
  visit(dashboard);
  return expressions;
}

function alertExpressions(): string[] {
  const rules = Bun.YAML.parse(readFileSync(join(dir, "alerts.yml"), "utf8")) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  return rules.groups.flatMap((group) => group.rules.map((rule) => rule.expr));
}

describe("scrape", () => {
  test("has every metric name the dashboard and the alert rules reference", async () => {
    const response = await metrics();
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await response.text();
    const exposed = new Set(
      text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).map((line) => line.split(/[{ ]/)[0]!),
    );
    const dashboard = dashboardExpressions();
    const alerts = alertExpressions();
    expect(dashboard.length).toBeGreaterThan(10);
    expect(alerts.length).toBeGreaterThanOrEqual(4);
    const referenced = [...new Set([...dashboard, ...alerts].flatMap(metricNames))].sort();
    expect(referenced.length).toBeGreaterThan(10);
    expect(referenced.filter((name) => !exposed.has(name))).toEqual([]);
  });

  test("monitor() on a provider pgpilot/prometheus built aggregates locally; elsewhere through the SDK", async () => {
    expect(histogramsOf(sql)).toBe("local");
    const plain = pilot(postgres(testUrl(), { max: 1, onnotice: () => {} }), {
      interceptors: [monitor({ meterProvider: new MeterProvider() })],
    });
    const forced = pilot(postgres(testUrl(), { max: 1, onnotice: () => {} }), {
      interceptors: [monitor({ meterProvider, metricProducer: false })],
    });
    const withViews = metricsHandler({ global: false, views: [{ instrumentName: "x", aggregation: { type: AggregationType.DROP } }] });
    const viewed = pilot(postgres(testUrl(), { max: 1, onnotice: () => {} }), {
      interceptors: [monitor({ meterProvider: withViews.meterProvider })],
    });
    try {
      expect([plain, forced, viewed].map((p) => histogramsOf(p))).toEqual(["sdk", "sdk", "sdk"]);
      expect(() => monitor({ metricProducer: {} as never })).toThrow(/metricProducer/);
    } finally {
      await Promise.all([plain.close({ timeout: 1 }), forced.close({ timeout: 1 }), viewed.close({ timeout: 1 })]);
      await withViews.shutdown();
    }
  });

  test("histogram in seconds with semconv buckets, label names sanitized", async () => {
    const text = await metrics.scrape();
    expect(text).toContain('le="0.001"');
    expect(text).toContain('le="10"');
    expect(text).toMatch(/db_client_operation_duration_count\{[^}]*error_type="42P01"/);
    expect(text).toMatch(/db_client_connection_timeouts_total\{[^}]*pgpilot_lane="primary"[^}]*\} 1/);
  });
});

describe("promtool", () => {
  const promtool = (args: string[]) => spawnSync("promtool", args, { cwd: dir, encoding: "utf8" });

  test("check rules", () => {
    const result = promtool(["check", "rules", "alerts.yml"]);
    expect(result.error).toBeUndefined();
    expect(result.stdout + result.stderr).toContain("SUCCESS: 6 rules found");
    expect(result.status).toBe(0);
  });

  test("test rules: every alert fires from synthetic series", () => {
    const result = promtool(["test", "rules", "alerts.test.yml"]);
    expect(result.stdout + result.stderr).toContain("SUCCESS");
    expect(result.status).toBe(0);
    const tested = new Set(
      (Bun.YAML.parse(readFileSync(join(dir, "alerts.test.yml"), "utf8")) as {
        tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
      }).tests.flatMap((t) => t.alert_rule_test.filter((r) => r.exp_alerts.length > 0).map((r) => r.alertname)),
    );
    const alerts = (Bun.YAML.parse(readFileSync(join(dir, "alerts.yml"), "utf8")) as {
      groups: { rules: { alert: string }[] }[];
    }).groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(alerts.filter((alert) => !tested.has(alert))).toEqual([]);
  });

  test("check metrics: the scrape passes Prometheus's naming lint (no gauge named *_count)", async () => {
    const result = spawnSync("promtool", ["check", "metrics"], { input: await metrics.scrape(), encoding: "utf8" });
    expect(result.stdout + result.stderr).toBe("");
    expect(result.status).toBe(0);
  });
});

describe("servers and handlers", () => {
  test("servePrometheus serves /metrics and /health/database over HTTP", async () => {
    const server = await servePrometheus({ host: "127.0.0.1", port: 0, global: false, health: sql });
    try {
      const own = pilot(postgres(testUrl(), { max: 1, onnotice: () => {} }), {
        name: "served",
        interceptors: [monitor({ meterProvider: server.meterProvider })],
      });
      await own`select 1`;
      // servePrometheus built this provider with its producer: monitor() aggregates locally.
      expect(histogramsOf(own)).toBe("local");
      const scraped = await (await fetch(server.url)).text();
      expect(scraped).toMatch(/db_client_operation_duration_count\{[^}]*db_client_connection_pool_name="served"[^}]*\} 1/);
      const health = await fetch(new URL("/health/database", server.url));
      expect(health.status).toBe(200);
      const body = await health.text();
      expect(JSON.parse(body).status).toBe(sql.health().status);
      expect((await fetch(new URL("/nope", server.url))).status).toBe(404);
      await own.close({ timeout: 1 });
    } finally {
      await server.close();
    }
  });

  test("healthHandler: 200 unless failed, 503 when failed", async () => {
    const reply = (status: "healthy" | "degraded" | "failed") =>
      healthHandler({ health: () => ({ status, score: 0, reasons: [], checks: {} }) })();
    expect(reply("healthy").status).toBe(200);
    expect(reply("degraded").status).toBe(200);
    const failed = reply("failed");
    expect(failed.status).toBe(503);
    expect(await failed.json()).toEqual({ status: "failed", score: 0, reasons: [], checks: {} });
    const throwing = healthHandler({ health: () => { throw new Error("x"); } })();
    expect(throwing.status).toBe(503);
  });
});
