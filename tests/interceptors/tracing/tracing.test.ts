/**
 * tracing(): one CLIENT span per executed query, transaction spans parenting their queries
 * without a context manager, errors with SQLSTATE, opt-ins, and a throwing processor that does
 * not fail queries. Real PostgreSQL, real trace SDK with an in-memory exporter.
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base";
import postgres from "postgres";
import { ConfigError, pilot } from "../../../mod.ts";
import { monitor } from "../../../lib/interceptors/monitor/index.ts";
import { tracing, type TracingOptions } from "../../../lib/interceptors/tracing/index.ts";
import { testUrl } from "../../support/db.ts";
import { AsyncContextManager, tracesHarness } from "../../support/kit.ts";

const traces = tracesHarness();
const closers: (() => Promise<unknown>)[] = [];

function traced(options: TracingOptions = {}, provider = traces.tracerProvider) {
  const sql = pilot(postgres(testUrl(), { max: 4, onnotice: () => {} }), {
    name: "main",
    interceptors: [tracing({ tracerProvider: provider, ...options }), monitor({ slowQueryMs: 40 })],
  });
  closers.push(() => sql.close({ timeout: 1 }));
  return sql;
}

beforeEach(() => traces.reset());
afterAll(async () => {
  for (const close of closers) await close();
  await traces.shutdown();
});

test("bad options throw a ConfigError", () => {
  expect(() => tracing({ maxQueryTextLength: 3 })).toThrow(ConfigError);
  expect(() => tracing({ sqlcommenter: true } as never)).toThrow(/sqlcommenter/);
});

describe("spans", () => {
  test("one CLIENT span per executed query; fragments, unstarted queries and repeated awaits add none", async () => {
    const sql = traced();
    const query = sql`select ${1}::int as one`;
    await query;
    await query; // awaited again: already executed
    const where = sql`where n > ${0}`;
    await sql`select n from generate_series(1, 3) as n ${where}`;
    sql`select 'never started'`; // lazy: never executed
    await sql.unsafe("select 2");
    const spans = traces.spans();
    expect(spans.map((s) => s.name)).toEqual(["SELECT", "SELECT", "SELECT"]);
    for (const span of spans) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(span.attributes["db.system.name"]).toBe("postgresql");
      expect(span.attributes["pgpilot.lane"]).toBe("primary");
      expect(span.attributes["server.port"]).toBe(Number(new URL(testUrl()).port));
      expect(span.parentSpanContext).toBeUndefined();
    }
    expect(spans[0]!.attributes["db.query.text"]).toBe("select $1::int as one");
    expect(spans[0]!.attributes["db.response.returned_rows"]).toBe(1);
    expect(spans[2]!.attributes["db.query.text"]).toBe("select ?");
  });

  test("span name has the collection", async () => {
    const sql = traced();
    await sql`select count(*) from pg_class where relkind = ${"r"}`;
    expect(traces.spans()[0]!.name).toBe("SELECT pg_class");
    expect(traces.spans()[0]!.attributes["db.collection.name"]).toBe("pg_class");
  });

  test("queries inside a transaction are children of its span (no context manager)", async () => {
    const sql = traced();
    await sql.begin(async (tx) => {
      await tx`select 1`;
      await tx.savepoint((sp) => sp`select 2`);
      await tx`select 3`;
    });
    await sql`select 4`;
    const spans = traces.spans();
    const transaction = spans.find((s) => s.name === "transaction")!;
    expect(transaction).toBeDefined();
    const children = spans.filter((s) => s.parentSpanContext?.spanId === transaction.spanContext().spanId);
    expect(children.map((s) => s.attributes["db.query.text"])).toEqual(["select 1", "select 2", "select 3"]);
    for (const child of children) expect(child.spanContext().traceId).toBe(transaction.spanContext().traceId);
    const outside = spans.find((s) => s.attributes["db.query.text"] === "select 4")!;
    expect(outside.parentSpanContext).toBeUndefined();
    expect(outside.spanContext().traceId).not.toBe(transaction.spanContext().traceId);
    expect(spans).toHaveLength(5);
  });

  test("reserved connection: a reserve span with its queries as children", async () => {
    const sql = traced();
    const reserved = await sql.reserve();
    await reserved`select 1`;
    reserved.release();
    await Bun.sleep(0);
    const spans = traces.spans();
    const reserve = spans.find((s) => s.name === "reserve")!;
    expect(spans.find((s) => s.name === "SELECT")!.parentSpanContext?.spanId).toBe(reserve.spanContext().spanId);
  });

  test("errors: status ERROR, error.type and SQLSTATE, no message recorded", async () => {
    const sql = traced();
    await expect(sql`select ${"not a number"}::int`.execute()).rejects.toMatchObject({ code: "22P02" });
    const [span] = traces.spans();
    expect(span!.status).toEqual({ code: SpanStatusCode.ERROR, message: "22P02" });
    expect(span!.attributes["error.type"]).toBe("22P02");
    expect(span!.attributes["db.response.status_code"]).toBe("22P02");
    expect(span!.events.filter((event) => event.name === "exception")).toEqual([]);
    expect(JSON.stringify(span!.attributes)).not.toContain("not a number");
  });

  test("a failing transaction: error on the query and on the transaction span", async () => {
    const sql = traced();
    await expect(sql.begin((tx) => tx`select 1/0`)).rejects.toMatchObject({ code: "22012" });
    const spans = traces.spans();
    expect(spans.map((s) => [s.name, s.attributes["error.type"]])).toEqual([["SELECT", "22012"], ["transaction", "22012"]]);
  });

  test("slow query: span event when monitor() is in the chain", async () => {
    const sql = traced();
    await sql`select pg_sleep(0.05)`;
    await sql`select 1`;
    const [slow, fast] = traces.spans();
    expect(slow!.events.map((e) => e.name)).toEqual(["pgpilot.slow_query"]);
    expect(slow!.events[0]!.attributes!["pgpilot.threshold_ms"]).toBe(40);
    expect(fast!.events).toEqual([]);
  });

  test("huge query text is truncated", async () => {
    const sql = traced({ maxQueryTextLength: 64 });
    const columns = Array.from({ length: 200 }, (_, i) => `${i} as c${i}`).join(", ");
    await sql.unsafe(`select ${columns}`);
    const text = traces.spans()[0]!.attributes["db.query.text"] as string;
    expect(text).toHaveLength(64);
    expect(text.endsWith("…")).toBe(true);
  });
});

describe("parents and opt-ins", () => {
  test("active context is respected; requireParentSpan skips orphans and their transactions", async () => {
    const manager = new AsyncContextManager();
    context.setGlobalContextManager(manager);
    try {
      const sql = traced({ requireParentSpan: true });
      await sql`select 1`;
      await sql.begin((tx) => tx`select 2`);
      expect(traces.spans()).toHaveLength(0);
      const tracer = traces.tracerProvider.getTracer("app");
      const request = tracer.startSpan("GET /users");
      await context.with(trace.setSpan(context.active(), request), () => sql`select 3`.execute());
      request.end();
      const spans = traces.spans();
      expect(spans.map((s) => s.name)).toEqual(["SELECT", "GET /users"]);
      expect(spans[0]!.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    } finally {
      context.disable();
    }
  });

  test("parameters are recorded only when asked", async () => {
    const plain = traced();
    await plain`select ${"a-value"}::text, ${7}::int`;
    expect(Object.keys(traces.spans()[0]!.attributes).filter((k) => k.startsWith("db.query.parameter"))).toEqual([]);
    traces.reset();
    const capturing = traced({ captureParameters: true });
    await capturing`select ${"a-value"}::text, ${7}::int, ${null}::int`;
    expect(traces.spans()[0]!.attributes).toMatchObject({
      "db.query.parameter.0": "a-value",
      "db.query.parameter.1": "7",
      "db.query.parameter.2": "null",
    });
  });

  test("sqlCommenter: unsafe() text carries the span's traceparent to the server", async () => {
    const sql = traced({ sqlCommenter: true });
    const [row] = await sql.unsafe("select current_query() as text");
    const [span] = traces.spans();
    const { traceId, spanId } = span!.spanContext();
    expect(row!.text).toBe(`/*traceparent='00-${traceId}-${spanId}-01'*/ select current_query() as text`);
    // Tagged templates are left alone (their strings are shared by every call).
    const [tagged] = await sql`select current_query() as text`;
    expect(tagged!.text).toBe("select current_query() as text");
  });
});

describe("telemetry never fails a query", () => {
  test("a span processor that throws on start and on end", async () => {
    const throwing: SpanProcessor = {
      onStart: () => {
        throw new Error("onStart bug");
      },
      onEnd: () => {
        throw new Error("onEnd bug");
      },
      forceFlush: async () => {},
      shutdown: async () => {},
    };
    const broken = tracesHarness([throwing]);
    const sql = traced({}, broken.tracerProvider);
    const [row] = await sql`select 41 + 1 as answer`;
    expect(row!.answer).toBe(42);
    await sql.begin((tx) => tx`select 1`);
    await expect(sql`select nope`.execute()).rejects.toMatchObject({ code: "42703" });
    await broken.shutdown();
  });

  test("a tracer provider that throws", async () => {
    const provider = {
      getTracer: () => ({
        startSpan: () => {
          throw new Error("tracer bug");
        },
        startActiveSpan: () => {
          throw new Error("tracer bug");
        },
      }),
    };
    const sql = traced({}, provider as never);
    const [row] = await sql`select 1 as one`;
    expect(row!.one).toBe(1);
  });
});
