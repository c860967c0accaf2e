/**
 * deadline() against the real server: the budget cancels the query on the server, the caller
 * gets DeadlineExceededError, and the same connection serves the next query.
 */
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { ConfigError, DeadlineExceededError } from "../../../lib/shared/errors.ts";
import { deadline } from "../../../lib/interceptors/deadline/index.ts";
import { pilot } from "../../../lib/core/pilot.ts";
import { testUrl } from "../../support/db.ts";
import { until } from "../../support/kit.ts";

const observer = postgres(testUrl(), { max: 1, onnotice: () => {} });
const clock = deadline({ timeoutMs: 5_000 });
// max 1: "the pool serves the next query" means the cancelled connection itself is usable.
const sql = pilot(postgres(testUrl(), { max: 1, onnotice: () => {} }), { interceptors: [clock] });

afterAll(async () => {
  await sql.close({ timeout: 1 });
  await observer.end({ timeout: 1 });
});

/** The server's view of the backend that last ran a statement containing `marker`. */
async function backendOf(marker: string): Promise<{ pid: number; state: string } | undefined> {
  const rows = await observer`
    select pid, state from pg_stat_activity
    where query like ${"%" + marker + "%"} and pid <> pg_backend_pid()`;
  return rows[0] as { pid: number; state: string } | undefined;
}

describe("deadline", () => {
  test("select pg_sleep(10) with a 200 ms budget is cancelled on the server; the connection serves the next query", async () => {
    const [{ pid: before }] = await sql`select pg_backend_pid() as pid`;
    const error = await sql.with({ timeoutMs: 200 })`select pg_sleep(10), 'deadline-marker-sleep' as marker`.catch((e) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error.code).toBe("DEADLINE_EXCEEDED");
    expect(error.budgetMs).toBe(200);
    // The statement reached the server, and its backend is idle again: cancelled, not still sleeping.
    const backend = await until(async () => {
      const row = await backendOf("deadline-marker-sleep");
      return row !== undefined && row.state !== "active" ? row : undefined;
    }, { message: "the backend to leave pg_sleep" });
    expect(backend.state).toBe("idle");
    expect(backend.pid).toBe(before);
    const [{ pid: after, one }] = await sql`select pg_backend_pid() as pid, 1 as one`;
    expect(one).toBe(1);
    expect(after).toBe(before);
    expect(clock.stats().expired).toBeGreaterThanOrEqual(1);
  });

  test("a transaction past its budget: the running inner query is cancelled, the callback sees DeadlineExceededError, it rolls back", async () => {
    await sql`create table if not exists deadline_tx (id int)`;
    let inner: any;
    let pid = 0;
    const error = await sql.with({ timeoutMs: 200 }).begin(async (tx) => {
      [{ pid }] = await tx`select pg_backend_pid() as pid`;
      await tx`insert into deadline_tx values (1)`;
      try {
        await tx`select pg_sleep(10), 'deadline-marker-tx' as marker`;
      } catch (e) {
        inner = e;
        throw e;
      }
    }).catch((e) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    // The backend left pg_sleep and the transaction (ROLLBACK ran), long before 10 s.
    const state = await until(async () => {
      const [row] = await observer`select state from pg_stat_activity where pid = ${pid}`;
      return row?.state === "idle" ? row.state as string : undefined;
    }, { message: "the transaction's backend to go idle" });
    expect(state).toBe("idle");
    // Inside the callback, the cancelled query's 57014 arrives as DeadlineExceededError with the cause.
    expect(inner).toBeInstanceOf(DeadlineExceededError);
    expect(inner.cause?.code).toBe("57014");
    expect((await sql`select count(*)::int as n from deadline_tx`)[0]!.n).toBe(0);
    expect(await sql.begin((tx) => tx`select 2 as two`)).toEqual([{ two: 2 }] as any);
    await sql`drop table deadline_tx`;
  });

  test("a query that finishes within its budget is untouched; the caller's own cancel stays a cancel", async () => {
    expect(await sql.with({ timeoutMs: 2_000 })`select 3 as three`).toEqual([{ three: 3 }] as any);
    const query = sql`select pg_sleep(10), 'deadline-marker-cancel' as marker`;
    const settled = query.catch((e) => e);
    await until(async () => ((await backendOf("deadline-marker-cancel"))?.state === "active" ? true : undefined), { message: "the statement to run" });
    query.cancel();
    const error = await settled;
    expect(error).not.toBeInstanceOf(DeadlineExceededError);
    expect(error.code).toBe("57014");
    expect((await sql`select 4 as four`)[0]!.four).toBe(4);
  });

  test("the budget includes the wait for a connection", async () => {
    const busy = sql`select pg_sleep(0.5), 'deadline-marker-busy' as marker`.execute();
    const queued = sql.with({ timeoutMs: 50 })`select 5 as five`.catch((e) => e);
    expect(await queued).toBeInstanceOf(DeadlineExceededError);
    expect((await busy).length).toBe(1);
    expect((await sql`select 6 as six`)[0]!.six).toBe(6);
  });

  test("bad options are a ConfigError naming the field", () => {
    expect(() => deadline({ timeoutMs: 0 })).toThrow(ConfigError);
    expect(() => deadline({ timeoutMs: -1 })).toThrow(/timeoutMs/);
    expect(() => deadline({ timeout: 5 } as any)).toThrow(/timeout/);
  });
});
