/**
 * The chain against the real server: order, throwing interceptors, cancellation while queued,
 * retries re-sending a query, aborting a transaction, lanes, stats() and health().
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import type { Interceptor } from "../../lib/core/interceptor.ts";
import type { Operation } from "../../lib/core/operation.ts";
import { pilot } from "../../mod.ts";
import { testUrl } from "../support/db.ts";
import { Cleanup } from "../support/kit.ts";
import { recorder } from "../support/recorder.ts";

const raw = postgres(testUrl(), { max: 2, onnotice: () => {} });
const suffix = Math.random().toString(36).slice(2, 8);
/** Every pilot a test opened, closed after all. */
const clients = new Cleanup();
function open(interceptors: Interceptor[], max = 2) {
  const sql = pilot(postgres(testUrl(), { max, onnotice: () => {} }), { interceptors });
  clients.track(sql);
  return sql;
}

beforeAll(async () => {
  await raw.unsafe(`create sequence flaky_${suffix}`);
  // Fails on every odd call (a sequence survives the error): the first attempt fails, a re-sent copy succeeds.
  await raw.unsafe(`create function flaky_${suffix}() returns int language plpgsql as $$
    declare n int;
    begin
      n := nextval('flaky_${suffix}');
      if n % 2 = 1 then raise exception 'odd call %', n using errcode = '08006'; end if;
      return n;
    end $$`);
});
afterAll(async () => {
  await clients.run();
  await raw.unsafe(`drop function if exists flaky_${suffix}(); drop sequence if exists flaky_${suffix}`);
  await raw.end({ timeout: 1 });
});

/** Holds every root operation until released: stands in for a queue in front of the pool. */
function gate(): Interceptor & { release(): void; waiting: number } {
  let open = false;
  const waiters: (() => void)[] = [];
  const self = {
    name: "gate",
    waiting: 0,
    release() {
      open = true;
      waiters.splice(0).forEach((w) => w());
    },
    async intercept(op: Operation, next: () => Promise<unknown>) {
      if (!open && !op.parent) {
        self.waiting++;
        await new Promise<void>((resolve, reject) => {
          waiters.push(resolve);
          op.signal.addEventListener("abort", () => reject(op.signal.reason), { once: true });
        }).finally(() => self.waiting--);
      }
      return next();
    },
  };
  return self;
}

describe("chain", () => {
  test("a throwing interceptor surfaces its error and leaves the pool usable", async () => {
    let fail = true;
    const throwing: Interceptor = {
      name: "throwing",
      async intercept(_op, next) {
        if (fail) throw new Error("interceptor failed");
        return next();
      },
    };
    const sql = open([throwing], 1);
    const errors = await Promise.all(Array.from({ length: 5 }, () => sql`select 1`.catch((e) => e.message)));
    expect(errors).toEqual(Array(5).fill("interceptor failed"));
    fail = false;
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => sql`select ${i}::int as i`));
    expect(results.map((r) => r[0]!.i)).toEqual([0, 1, 2, 3, 4]);
  });

  test("an interceptor that throws after the query ran: the caller gets its error", async () => {
    const after: Interceptor = {
      name: "after",
      async intercept(_op, next) {
        await next();
        throw new Error("after the query");
      },
    };
    const sql = open([after], 1);
    expect(await sql`select 1`.catch((e) => e.message)).toBe("after the query");
  });

  test("cancel() while queued in the chain: rejected like postgres.js, never sent", async () => {
    const g = gate();
    const rec = recorder();
    const sql = open([rec, g]);
    const query = sql`select pg_sleep(0.01) as queued_${"x"}`;
    const settled = query.catch((e) => e);
    await Bun.sleep(10);
    expect(g.waiting).toBe(1);
    query.cancel();
    const error = await settled;
    expect(error.code).toBe("57014");
    expect(g.waiting).toBe(0);
    expect(rec.seen[0]!.op.dispatched).toBe(false);
    g.release();
    expect((await sql`select 1 as ok`)[0]!.ok).toBe(1);
  });

  test("an AbortSignal while queued: the caller gets the signal's reason", async () => {
    const g = gate();
    const sql = open([g]);
    const controller = new AbortController();
    const settled = sql.with({ signal: controller.signal })`select 1`.catch((e) => e);
    await Bun.sleep(10);
    controller.abort(new Error("user gave up"));
    expect((await settled).message).toBe("user gave up");
    g.release();
  });

  test("a retrying interceptor re-sends a fresh copy of tagged and unsafe queries", async () => {
    const retryOnce: Interceptor = {
      name: "retry-once",
      retries: true,
      async intercept(_op, next) {
        try {
          return await next();
        } catch {
          return next();
        }
      },
    };
    const rec = recorder();
    const sql = open([retryOnce, rec]);
    const [tagged] = await sql`select flaky_${sql.unsafe(suffix)}() as n`;
    expect(tagged!.n % 2).toBe(0);
    const [unsafe] = await sql.unsafe(`select flaky_${suffix}() as n`);
    expect(unsafe!.n).toBe(tagged!.n + 2);
    expect(rec.seen.map((s) => s.outcome)).toEqual(["error", "ok", "error", "ok"]);
  });

  test("aborting a transaction cancels its running child query on the server", async () => {
    const abortTransactions: Interceptor = {
      name: "abort-tx",
      async intercept(op, next) {
        if (op.kind === "transaction") setTimeout(() => op.abort(new Error("budget spent")), 100);
        return next();
      },
    };
    const sql = open([abortTransactions]);
    const error = await sql.begin(async (tx) => {
      await tx`select pg_sleep(5) as cancelled_with_transaction`;
    }).catch((e) => e);
    // The abort's own reason, with the server's cancel as its cause.
    expect(error.message).toBe("budget spent");
    expect(error.cause.code).toBe("57014");
    // By its marker: another file's orphaned pg_sleep(5) (a reset proxy connection) may still run.
    const [{ n }] = await raw`select count(*)::int as n from pg_stat_activity where query like '%cancelled_with_transaction%' and state = 'active' and pid <> pg_backend_pid()`;
    expect(n).toBe(0);
    expect((await sql`select 1 as ok`)[0]!.ok).toBe(1);
  });
});

describe("lanes", () => {
  test("sql.lane(), sql.with({ lane }) and a comment hint route to that lane", async () => {
    const rec = recorder();
    const sql = pilot({
      primary: postgres(testUrl(), { max: 1, connection: { application_name: "lane-primary" } }),
      other: postgres(testUrl(), { max: 1, connection: { application_name: "lane-other" } }),
    }, { interceptors: [rec] });
    clients.track(sql);
    const app = (rows: readonly any[]) => rows[0]!.a as string;
    expect(app(await sql`select current_setting('application_name') as a`)).toBe("lane-primary");
    expect(app(await sql.lane("other")`select current_setting('application_name') as a`)).toBe("lane-other");
    expect(app(await sql.with({ lane: "other" })`select current_setting('application_name') as a`)).toBe("lane-other");
    expect(app(await sql.unsafe("/* pgpilot:lane=other */ select current_setting('application_name') as a"))).toBe("lane-other");
    expect(app(await sql.unsafe("/* pgpilot:lane=nope */ select current_setting('application_name') as a"))).toBe("lane-primary");
    const inTx = await sql.lane("other").begin((tx) => tx`select current_setting('application_name') as a`);
    expect(app(inTx)).toBe("lane-other");
    expect(rec.seen.map((s) => s.lane)).toEqual(["primary", "other", "other", "other", "primary", "other", "other"]);
    expect(sql.lane("other")).toBe(sql.lane("other"));
  });

  test("an interceptor that changes op.lane routes the operation", async () => {
    const toOther: Interceptor = {
      name: "to-other",
      intercept: (op, next) => ((op.lane = "other"), next()),
    };
    const sql = pilot({
      primary: postgres(testUrl(), { max: 1, connection: { application_name: "r-primary" } }),
      other: postgres(testUrl(), { max: 1, connection: { application_name: "r-other" } }),
    }, { interceptors: [toOther] });
    clients.track(sql);
    const [{ a }] = await sql`select current_setting('application_name') as a`;
    expect(a).toBe("r-other");
  });
});

describe("stats() and health()", () => {
  test("merge every interceptor's section and vote; the worst vote wins", async () => {
    const good: Interceptor = { name: "good", intercept: (_o, n) => n(), stats: () => ({ calls: 1 }), health: () => ({ status: "healthy" }) };
    const meh: Interceptor = {
      name: "meh",
      intercept: (_o, n) => n(),
      health: () => ({ status: "degraded", reasons: ["queue is long"] }),
    };
    const broken: Interceptor = {
      name: "broken",
      intercept: (_o, n) => n(),
      stats: () => {
        throw new Error("stats failed");
      },
      health: () => {
        throw new Error("health failed");
      },
    };
    const sql = open([good, meh, broken]);
    const stats = sql.stats();
    expect(stats.good).toEqual({ calls: 1 });
    expect(stats.lanes.primary!.max).toBe(2);
    expect("broken" in stats).toBe(false);
    const health = sql.health();
    expect(health.status).toBe("degraded");
    expect(health.score).toBe(0.5);
    expect(health.reasons).toEqual(["meh: queue is long"]);
    await sql.close({ timeout: 1 });
    expect(sql.health().status).toBe("failed");
  });

  test("close() always settles, and closes every interceptor", async () => {
    let closed = 0;
    const withTimer: Interceptor = { name: "timer", intercept: (_o, n) => n(), close: async () => void closed++ };
    const sql = open([withTimer]);
    await sql`select 1`;
    await sql.close({ timeout: 1 });
    await sql.close({ timeout: 1 });
    expect(closed).toBe(1);
  });
});
