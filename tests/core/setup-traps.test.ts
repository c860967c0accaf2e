/**
 * Setup without traps (issue 15, item 4): each found by trying pgpilot as a new user would.
 * - `sql.with({ timeoutMs })` with nothing in the chain to enforce it is refused at the call;
 * - `monitor(), monitor()` is a ConfigError;
 * - an unknown option names the nearest valid one;
 * - `sql.stats()` is typed per interceptor and its numbers are rounded for humans;
 * - a pilot created before `servePrometheus()` is refused (or warned about), not silently unmeasured.
 */
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { metrics } from "@opentelemetry/api";
import postgres from "postgres";
import { adaptive, breaker, ConfigError, DeadlineExceededError, deadline, type Interceptor, monitor, pilot } from "../../mod.ts";
import { forHumans } from "../../lib/core/lifecycle.ts";
import { servePrometheus } from "../../lib/prometheus.ts";
import { testUrl } from "../support/db.ts";

const unreachable = () => postgres("postgres://127.0.0.1:1/db", { max: 1 });
const opened: { close(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.allSettled(opened.map((sql) => sql.close()));
});

/** Throws and returns what `fn` throws. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}

describe("sql.with({ timeoutMs })", () => {
  test("is refused at the call when no interceptor of the chain has the budget stage", () => {
    const sql = pilot(unreachable(), { interceptors: [monitor(), breaker()] });
    opened.push(sql);
    const error = thrown(() => sql.with({ timeoutMs: 500 }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("sql.with: timeoutMs:");
    expect(error.message).toContain("add deadline()");
    // Without any interceptor too; the other options stay accepted.
    const bare = pilot(unreachable());
    opened.push(bare);
    expect(() => bare.with({ timeoutMs: 1 })).toThrow(ConfigError);
    expect(() => bare.with({ signal: new AbortController().signal })).not.toThrow();
    expect(() => bare.lane("primary").with({ signal: new AbortController().signal })).not.toThrow();
  });

  test("is accepted with any interceptor of stage budget, whatever its name", () => {
    const budget: Interceptor = { name: "my-budget", stage: "budget", intercept: (_op, next) => next() };
    const sql = pilot(unreachable(), { interceptors: [budget] });
    opened.push(sql);
    expect(() => sql.with({ timeoutMs: 500 })).not.toThrow();
  });

  test("is honoured with deadline(): the call gets DeadlineExceededError", async () => {
    const sql = pilot(postgres(testUrl(), { max: 1 }), { interceptors: [deadline({ timeoutMs: 60_000 })] });
    opened.push(sql);
    const error = await sql.with({ timeoutMs: 50 })`select pg_sleep(30)`.catch((e) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).budgetMs).toBe(50);
  });
});

describe("the chain", () => {
  test("monitor(), monitor() is a ConfigError naming the second one", () => {
    const error = thrown(() => pilot(unreachable(), { interceptors: [monitor(), monitor()] }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('interceptors[1]: a second interceptor named "monitor"');
  });
});

describe("config errors name an unknown key and the nearest valid one", () => {
  test("a misspelt option", () => {
    expect(thrown(() => monitor({ slowQueryMS: 150 } as never)).message).toBe(
      "monitor: unknown option slowQueryMS — did you mean slowQueryMs?",
    );
    expect(thrown(() => pilot(unreachable(), { interceptor: [] } as never)).message).toBe(
      "pilot: unknown option interceptor — did you mean interceptors?",
    );
  });

  test("a misspelt nested option names its parent", () => {
    const error = thrown(() => breaker({ thresholds: { conection: 2 } } as never)) as ConfigError;
    expect(error.message).toContain("thresholds: unknown option conection — did you mean connection?");
    expect(error.issues[0]!.path).toBe("thresholds");
  });

  test("nothing close: the valid options are listed", () => {
    const message = thrown(() => deadline({ zzz: 1 } as never)).message;
    expect(message).toBe("deadline: unknown option zzz (valid options: timeoutMs)");
    expect(message).not.toContain("Expected never");
  });
});

describe("sql.stats()", () => {
  test("is typed from the interceptors and rounded for humans", async () => {
    const probe = {
      name: "probe" as const,
      intercept: (_op: unknown, next: () => Promise<unknown>) => next(),
      stats: () => ({ rate: 305.7911649178464, share: 0.27197558293289814, tiny: 0.000123456, count: 7, list: [1.23456] }),
    } satisfies Interceptor;
    const sql = pilot(postgres(testUrl(), { max: 2 }), { interceptors: [monitor(), probe, adaptive()] });
    opened.push(sql);
    for (let i = 0; i < 20; i++) await sql`select ${i}::int`;
    const stats = sql.stats();
    // Compile-time: these are typed sections (tsc runs over the tests).
    const p95: number = stats.monitor.latency.p95Ms;
    const limit: number = stats.adaptive.lanes.primary!.limit;
    const rate: number = stats.probe.rate;
    expect([typeof p95, typeof limit, rate]).toEqual(["number", "number", 305.791]);
    expect(stats.probe).toEqual({ rate: 305.791, share: 0.272, tiny: 0.000123, count: 7, list: [1.235] });
    // Every number of every section is already rounded.
    const raw: string[] = [];
    JSON.stringify(stats, (key, value) => {
      if (typeof value === "number" && !Object.is(forHumans(value), value)) raw.push(`${key}=${value}`);
      return value;
    });
    expect(raw).toEqual([]);
  });
});

describe("pgpilot/prometheus and the order of setup", () => {
  test("a pilot created before servePrometheus() is refused as its health, and warned about", async () => {
    metrics.disable(); // no global provider: as in a fresh process
    const early = pilot(unreachable(), { name: "early", interceptors: [monitor()] });
    opened.push(early);
    const refused = await servePrometheus({ host: "127.0.0.1", port: 0, health: early }).catch((e) => e);
    expect(refused).toBeInstanceOf(ConfigError);
    expect(refused.message).toContain('pilot "early" was created before servePrometheus()');
    expect(refused.message).toContain("server.serveHealth(sql)");

    const warn = spyOn(console, "warn").mockImplementation(() => {});
    const server = await servePrometheus({ host: "127.0.0.1", port: 0 });
    try {
      expect(warn.mock.calls.map((call) => String(call[0])).join("\n")).toMatch(/after pilots? (".*", )?"early"/);
      expect(() => server.serveHealth(early)).toThrow(ConfigError);

      // The right order: server, pilot, serveHealth — metrics and health both served.
      const late = pilot(postgres(testUrl(), { max: 1 }), { name: "late", interceptors: [monitor()] });
      opened.push(late);
      server.serveHealth(late);
      await late`select 1`;
      expect(await server.scrape()).toContain('db_client_operation_duration_count{db_system_name="postgresql"');
      const health = await fetch(server.url.replace("/metrics", "/health/database"));
      expect(health.status).toBe(200);
    } finally {
      warn.mockRestore();
      await server.close();
      metrics.disable();
    }
  });
});
