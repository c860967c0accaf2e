/**
 * Calls ORMs make (kysely runs everything on `sql.reserve()`, drizzle wraps errors) and calls a
 * caller aborts: queries on a reservation are operations judged one by one, a transaction
 * opened with plain `BEGIN` on a reservation is a transaction, a wrapped error is the failure
 * it wraps, and an abort rejects with the caller's own reason.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { InMemorySpanExporter, SimpleSpanProcessor, BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import postgres from "postgres";
import { breaker, CircuitOpenError, classify, DeadlineExceededError, deadline, errorCode, monitor, pilot, tracing } from "../../mod.ts";
import { underlyingError } from "../../lib/shared/classify.ts";
import { testUrl } from "../support/db.ts";
import { recorder } from "../support/recorder.ts";
import { until } from "../support/kit.ts";

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
});
function track<T extends { close(options?: { timeout?: number }): Promise<void> }>(sql: T): T {
  closers.push(() => sql.close({ timeout: 1 }));
  return sql;
}

describe("queries on a reservation", () => {
  test("each gets its own deadline: a 2 s sleep is cancelled on the server at the budget", async () => {
    const sql = track(pilot(postgres(testUrl(), { max: 2 }), { interceptors: [deadline({ timeoutMs: 200 })] }));
    const reserved = await sql.reserve();
    const marker = `reserved_sleep_${Date.now()}`;
    const error = await reserved.unsafe(`select pg_sleep(2) as ${marker}`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    // The server stops running it (a cancel, not a client-side timeout only).
    const probe = postgres(testUrl(), { max: 1 });
    await until(async () => {
      const rows = await probe`select 1 from pg_stat_activity where query like ${"%" + marker + "%"} and state = 'active' and pid <> pg_backend_pid()`;
      return rows.length === 0;
    }, { message: "the sleep to leave pg_stat_activity" });
    await probe.end();
    // The reservation is still usable after the cancel.
    expect([...(await reserved`select 2 as two`)]).toEqual([{ two: 2 }]);
    reserved.release();
  });

  test("BEGIN … COMMIT sent as statements is one transaction with its queries as children", async () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const seen = recorder();
    const monitoring = monitor();
    const sql = track(pilot(postgres(testUrl(), { max: 2 }), { tracerProvider, interceptors: [tracing(), monitoring, seen] }));
    const reserved = await sql.reserve();
    await reserved.unsafe("begin");
    await reserved`select 1`;
    await reserved.unsafe("savepoint a");
    await reserved.unsafe("rollback to savepoint a");
    await reserved.unsafe("commit");
    reserved.release();
    await until(() => seen.open === 0, { message: "the reservation to settle" });
    expect(seen.seen.map((s) => `${s.kind}:${s.command}<${s.parentKind ?? "-"}`)).toEqual([
      "reserve:RESERVE<-",
      "transaction:BEGIN<reserve",
      "query:BEGIN<transaction",
      "query:SELECT<transaction",
      "query:SAVEPOINT<transaction",
      "query:ROLLBACK<transaction",
      "query:COMMIT<transaction",
    ]);
    expect(monitoring.stats().totals).toMatchObject({ transactions: 1, reserves: 1, errors: 0 });
    const spans = exporter.getFinishedSpans();
    const transaction = spans.find((span) => span.name === "transaction")!;
    const reserve = spans.find((span) => span.name === "reserve")!;
    expect(transaction.parentSpanContext?.spanId).toBe(reserve.spanContext().spanId);
    const children = spans.filter((span) => span.parentSpanContext?.spanId === transaction.spanContext().spanId);
    expect(children.map((span) => span.name)).toEqual(["BEGIN", "SELECT", "SAVEPOINT", "ROLLBACK", "COMMIT"]);
  });

  test("a failed statement inside a manual transaction fails the transaction once; the breaker opens on 40001", async () => {
    const monitoring = monitor();
    const guard = breaker({ thresholds: { transaction: 3 }, activeProbing: false, recoveryMs: 60_000 });
    const sql = track(pilot(postgres(testUrl(), { max: 2 }), { interceptors: [monitoring, guard] }));
    const reserved = await sql.reserve();
    for (let i = 0; i < 3; i++) {
      await reserved.unsafe("begin");
      const error = await reserved.unsafe(
        "do $$ begin raise exception 'conflict' using errcode = '40001'; end $$",
      ).catch((e: unknown) => e);
      expect(errorCode(error)).toBe("40001");
      await reserved.unsafe("rollback");
    }
    expect(guard.state("primary")).toBe("open");
    const refused = await reserved`select 1`.then(() => undefined, (error: unknown) => error);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    reserved.release();
    await until(() => monitoring.stats().totals.reserves === 1, { message: "the reservation to settle" });
    // Three 40001s, each counted once although its transaction failed with it too, and the
    // refused select.
    expect(monitoring.stats().totals).toMatchObject({ transactions: 3, errors: 4 });
  });
});

describe("errors wrapped by an ORM", () => {
  test("the failure is found through `cause` and AggregateError, and counted once", () => {
    const pg = Object.assign(new Error("could not serialize access"), { code: "40001" });
    const wrapped = new Error("Failed query: update …", { cause: pg });
    expect(errorCode(wrapped)).toBe("40001");
    expect(classify(wrapped)).toBe("transaction");
    expect(underlyingError(wrapped)).toBe(pg);
    expect(classify(new AggregateError([new Error("x"), wrapped]))).toBe("transaction");
    const cyclic: { cause?: unknown } = {};
    cyclic.cause = cyclic;
    expect(classify(cyclic)).toBe("client");
  });

  test("monitor counts a transaction failing with a wrapped child error once", async () => {
    const monitoring = monitor();
    const sql = track(pilot(postgres(testUrl(), { max: 2 }), { interceptors: [monitoring] }));
    const error = await sql.begin(async (tx) => {
      try {
        await tx`select 1/0`;
      } catch (cause) {
        throw new Error("ORM: query failed", { cause });
      }
    }).catch((e: unknown) => e);
    expect(errorCode(error)).toBe("22012");
    expect(monitoring.stats().totals.errors).toBe(1);
  });
});

describe("eagerness and aborts", () => {
  test("sql.notify() runs without being awaited, as postgres.js's does", async () => {
    const sql = track(pilot(postgres(testUrl(), { max: 2 }), { interceptors: [recorder()] }));
    const received: string[] = [];
    await sql.listen("pgpilot_eager", (payload) => received.push(payload));
    void sql.notify("pgpilot_eager", "sent");
    await until(() => received.length === 1, { message: "the notification" });
    expect(received).toEqual(["sent"]);
  });

  test("a running call aborted by the caller rejects with the caller's reason, the server's 57014 as cause", async () => {
    const sql = track(pilot(postgres(testUrl(), { max: 2 }), { interceptors: [] }));
    const controller = new AbortController();
    const mine = new Error("user navigated away");
    const pending = sql.with({ signal: controller.signal })`select pg_sleep(5)`.catch((e: unknown) => e);
    const probe = postgres(testUrl(), { max: 1 });
    await until(async () =>
      (await probe`select 1 from pg_stat_activity where query like 'select pg_sleep(%' and state = 'active'`).length > 0, { message: "the sleep to run" });
    await probe.end();
    controller.abort(mine);
    const error = (await pending) as Error;
    expect(error).toBe(mine);
    expect((error.cause as { code?: string }).code).toBe("57014");
  });
});
