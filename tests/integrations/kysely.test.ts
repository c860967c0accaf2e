/**
 * kysely with kysely-postgres-js on raw postgres.js and through pilot() with the recommended
 * stack: identical results and errors, then whether deadline, breaker, retry, monitor and tracing
 * apply to kysely's calls (issue 13). kysely runs every query and transaction on `sql.reserve()`:
 * BEGIN / COMMIT / SAVEPOINT are plain statements on the reservation. Real PostgreSQL.
 */
import { describe, expect, test } from "bun:test";
import { type Generated, Kysely, sql as ksql } from "kysely";
import { PostgresJSDialect } from "kysely-postgres-js";
import type { Sql } from "postgres";
import { CircuitOpenError, DeadlineExceededError } from "../../mod.ts";
import { integrationFixture, outcome, pilotStack } from "./support.ts";

interface Database {
  integ_kysely_users: { id: Generated<number>; name: string; age: number | null };
  integ_kysely_posts: { id: Generated<number>; user_id: number; title: string };
}

const { admin, kit, closers, raw, piloted, reset } = integrationFixture("integ_kysely");

/** A Kysely on `client`; its destroy() would end the client, so the tests end clients themselves. */
function orm(client: Sql<any>): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresJSDialect({ postgres: client }) });
}

/** Runs `scenario` on a fresh data set, raw then through pilot, and expects the same outcome. */
async function same(scenario: (db: Kysely<Database>) => Promise<unknown>): Promise<unknown> {
  await reset();
  const expected = await outcome(() => scenario(orm(raw)));
  await reset();
  const actual = await outcome(() => scenario(orm(piloted.sql)));
  expect(actual).toEqual(expected);
  return expected;
}

const names = (db: Kysely<Database>) => db.selectFrom("integ_kysely_users").select("name").orderBy("id").execute().then((rows) => rows.map((r) => r.name));

describe("kysely: raw postgres.js and pilot() give the same results and errors", () => {
  test("CRUD", async () => {
    const result = await same(async (db) => {
      const inserted = await db.insertInto("integ_kysely_users").values({ name: "dee", age: 22 }).returningAll().execute();
      const updated = await db.updateTable("integ_kysely_users").set({ age: 23 }).where("name", "=", "dee").executeTakeFirst();
      const deleted = await db.deleteFrom("integ_kysely_users").where("name", "=", "cy").returning("id").execute();
      const all = await db.selectFrom("integ_kysely_users").selectAll().orderBy("id").execute();
      return { inserted, updated: updated.numUpdatedRows, deleted, all };
    });
    expect(result).toMatchObject({ ok: { inserted: [{ id: 4, name: "dee", age: 22 }], updated: 1n, deleted: [{ id: 3 }] } });
  });

  test("joins", async () => {
    const result = await same((db) =>
      db.selectFrom("integ_kysely_users as u").leftJoin("integ_kysely_posts as p", "p.user_id", "u.id").select(["u.name", "p.title"])
        .orderBy("u.id").orderBy("p.id").execute()
    );
    expect(result).toEqual({ ok: [{ name: "ada", title: "a1" }, { name: "ada", title: "a2" }, { name: "bob", title: "b1" }, { name: "cy", title: null }] });
  });

  test("transactions: callback, controlled transaction with savepoints, rollback, nested transaction refused", async () => {
    const result = await same(async (db) => {
      const committed = await db.transaction().execute(async (trx) => {
        await trx.insertInto("integ_kysely_users").values({ name: "tx-1" }).execute();
        return trx.selectFrom("integ_kysely_users").select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow();
      });
      const trx = await db.startTransaction().execute();
      await trx.insertInto("integ_kysely_users").values({ name: "tx-kept" }).execute();
      const afterKept = await trx.savepoint("after_kept").execute();
      await afterKept.insertInto("integ_kysely_users").values({ name: "tx-undone" }).execute();
      await afterKept.rollbackToSavepoint("after_kept").execute();
      const again = await trx.savepoint("again").execute();
      await again.insertInto("integ_kysely_users").values({ name: "tx-released" }).execute();
      await again.releaseSavepoint("again").execute();
      await trx.commit().execute();
      const rolledBack = await db.startTransaction().execute();
      await rolledBack.insertInto("integ_kysely_users").values({ name: "tx-gone" }).execute();
      await rolledBack.rollback().execute();
      const nested = await db.transaction().execute((outer) => outer.transaction().execute(async () => "never")).catch((e: Error) =>
        e.message
      );
      const level = await db.transaction().setIsolationLevel("serializable").execute((t) =>
        ksql<{ level: string }>`select current_setting('transaction_isolation') as level`.execute(t)
      );
      return { committed, nested, level: level.rows, names: await names(db) };
    });
    expect(result).toEqual({
      ok: {
        committed: { n: "4" },
        nested: "calling the transaction method for a Transaction is not supported",
        level: [{ level: "serializable" }],
        names: ["ada", "bob", "cy", "tx-1", "tx-kept", "tx-released"],
      },
    });
  });

  test("a failing statement: unique violation, alone, in a transaction, and after a savepoint", async () => {
    const alone = await same((db) => db.insertInto("integ_kysely_users").values({ name: "ada" }).execute());
    expect(alone).toMatchObject({ error: { name: "PostgresError", code: "23505" } });
    const inTransaction = await same((db) =>
      db.transaction().execute(async (trx) => {
        await trx.insertInto("integ_kysely_users").values({ name: "new" }).execute();
        await trx.insertInto("integ_kysely_users").values({ name: "bob" }).execute();
      })
    );
    expect(inTransaction).toMatchObject({ error: { name: "PostgresError", code: "23505" } });
    const recovered = await same(async (db) => {
      const trx = await db.startTransaction().execute();
      await trx.insertInto("integ_kysely_users").values({ name: "before" }).execute();
      const sp = await trx.savepoint("sp").execute();
      const error = await sp.insertInto("integ_kysely_users").values({ name: "ada" }).execute().catch((e: { code?: string }) => e.code);
      await sp.rollbackToSavepoint("sp").execute();
      await trx.commit().execute();
      return { error, names: await names(db) };
    });
    expect(recovered).toEqual({ ok: { error: "23505", names: ["ada", "bob", "cy", "before"] } });
  });

  test("streaming (.stream() on a cursor)", async () => {
    const result = await same(async (db) => {
      const rows: unknown[] = [];
      for await (const row of db.selectFrom("integ_kysely_users").select(["id", "name"]).orderBy("id").stream(2)) rows.push(row);
      return rows;
    });
    expect(result).toEqual({ ok: [{ id: 1, name: "ada" }, { id: 2, name: "bob" }, { id: 3, name: "cy" }] });
  });

  test("200 concurrent calls", async () => {
    const result = await same((db) =>
      Promise.all(
        Array.from({ length: 200 }, (_, i) => db.selectFrom("integ_kysely_users").select(["id", "name"]).where("id", "=", (i % 3) + 1).execute()),
      )
    );
    expect((result as { ok: unknown[] }).ok).toHaveLength(200);
  });

  test("prepared statements: not offered by kysely (every query is compiled to text + parameters)", () => {
    expect("prepare" in orm(raw).selectFrom("integ_kysely_users")).toBe(false);
  });
});

describe("kysely: the interceptors apply", () => {
  // failing until queries on a reservation get their own deadline: today the 2.5 s statement completes.
  test("deadline({ timeoutMs: 1000 }) stops a 2.5 s pg_sleep: DeadlineExceededError, cancelled on the server", async () => {
    const stack = pilotStack({ timeoutMs: 1000 });
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    const tag = `kysely-deadline-${Date.now()}`;
    const settled = ksql.raw(`select integ_kysely_slow('${tag}')`).execute(db).then(() => undefined, (error: unknown) => error);
    await kit.slowStarted(tag);
    const error = await settled;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(await kit.slowCompleted(tag)).toBe(false);
  });

  // failing until queries on a reservation get their own deadline: today the transaction commits after 2.5 s.
  test("deadline inside a kysely transaction: stopped on the server and rolled back", async () => {
    const stack = pilotStack({ timeoutMs: 1000 });
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    const tag = `kysely-deadline-tx-${Date.now()}`;
    const settled = db.transaction().execute(async (trx) => {
      await trx.insertInto("integ_kysely_users").values({ name: tag }).execute();
      await ksql.raw(`select integ_kysely_slow('${tag}')`).execute(trx);
    }).then(() => undefined, (error: unknown) => error);
    await kit.slowStarted(tag);
    const error = await settled;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(await kit.slowCompleted(tag)).toBe(false);
    expect(await admin`select 1 from integ_kysely_users where name = ${tag}`).toHaveLength(0);
  });

  // failing until BEGIN/COMMIT on a reservation is a transaction for the breaker: today the circuit stays closed.
  test("breaker: ten kysely transactions failing with 40001 open the circuit; the next call is rejected without I/O", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    for (let i = 0; i < 10; i++) {
      const error = await db.transaction().execute((trx) => ksql`select integ_kysely_fail_always()`.execute(trx)).catch((e: unknown) => e);
      expect((error as { code?: unknown }).code === "40001" || error instanceof CircuitOpenError).toBe(true);
    }
    expect(stack.breaker.state("primary")).toBe("open");
    const rejected = await db.selectFrom("integ_kysely_users").selectAll().execute().catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(CircuitOpenError);
  });

  test("retry: a kysely transaction failing with 40001 is not re-run by retry() (it cannot own the callback); the caller gets raw's error", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    await reset();
    const attempt = (db: Kysely<Database>, counter: { runs: number }) =>
      outcome(() =>
        db.transaction().execute(async (trx) => {
          counter.runs++;
          await trx.insertInto("integ_kysely_users").values({ name: "not-retried" }).execute();
          await ksql`select integ_kysely_fail_once()`.execute(trx);
        })
      );
    const viaPilot = { runs: 0 };
    await kit.resetFailOnce();
    const piloted = await attempt(orm(stack.sql), viaPilot);
    // Neither the callback nor any statement of the transaction was sent again.
    expect(viaPilot.runs).toBe(1);
    expect(await kit.failOnceCalls()).toBe(1);
    expect(await admin`select 1 from integ_kysely_users where name = 'not-retried'`).toHaveLength(0);
    expect(stack.retry.stats().retries.serialization).toBe(0);
    const viaRaw = { runs: 0 };
    await kit.resetFailOnce();
    expect(piloted).toEqual(await attempt(orm(raw), viaRaw));
    expect(piloted).toMatchObject({ error: { name: "PostgresError", code: "40001" } });
  });

  // failing until BEGIN/COMMIT on a reservation is a transaction for monitor(): today transactions = 0 (one reserve counted).
  test("monitor: one failed kysely transaction counts as one error and one transaction", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    await reset();
    const error = await db.transaction().execute(async (trx) => {
      await trx.insertInto("integ_kysely_users").values({ name: "will-fail" }).execute();
      await trx.insertInto("integ_kysely_users").values({ name: "ada" }).execute();
    }).catch((e: unknown) => e);
    expect((error as { code?: unknown }).code).toBe("23505");
    const totals = stack.monitor.stats().totals;
    expect({ errors: totals.errors, transactions: totals.transactions }).toEqual({ errors: 1, transactions: 1 });
  });

  // failing until BEGIN/COMMIT on a reservation is a transaction for tracing(): today only a reserve span parents the queries.
  test("tracing: a kysely transaction is a transaction span with its queries as children", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    await reset();
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("integ_kysely_users").values({ name: "traced" }).execute();
      await trx.selectFrom("integ_kysely_users").selectAll().where("name", "=", "traced").execute();
    });
    const spans = stack.spans();
    const transaction = spans.find((s) => s.name === "transaction");
    expect(transaction).toBeDefined();
    const children = spans.filter((s) => s.parentSpanContext?.spanId === transaction!.spanContext().spanId).map((s) => s.name);
    expect(children).toContain("INSERT integ_kysely_users");
    expect(children).toContain("SELECT integ_kysely_users");
  });

  test("affinity: every kysely query runs on a reservation, so reads stay on the primary (lane chosen per Kysely instance)", async () => {
    const stack = pilotStack({ replica: true });
    closers.push(() => stack.close());
    await reset();
    await orm(stack.sql).selectFrom("integ_kysely_posts").selectAll().execute();
    await orm(stack.sql.lane("replica")).selectFrom("integ_kysely_posts").selectAll().execute();
    const selects = stack.spans().filter((s) => s.name === "SELECT integ_kysely_posts").map((s) => s.attributes["pgpilot.lane"]);
    expect(selects).toEqual(["primary", "replica"]);
  });
});
