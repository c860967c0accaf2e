/**
 * drizzle-orm (postgres-js driver) on raw postgres.js and through pilot() with the recommended
 * stack: identical results and errors, then whether deadline, breaker, retry, monitor and tracing
 * apply to drizzle's calls (issue 13). Real PostgreSQL.
 */
import { describe, expect, test } from "bun:test";
import { asc, eq, relations, sql as dsql } from "drizzle-orm";
import { DrizzleQueryError } from "drizzle-orm/errors";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { integer, pgTable, serial, text } from "drizzle-orm/pg-core";
import type { Sql } from "postgres";
import { CircuitOpenError, DeadlineExceededError } from "../../mod.ts";
import { causes, integrationFixture, outcome, pilotStack } from "./support.ts";

const users = pgTable("integ_drizzle_users", {
  id: serial("id").primaryKey(),
  name: text("name").notNull().unique(),
  age: integer("age"),
});
const posts = pgTable("integ_drizzle_posts", {
  id: serial("id").primaryKey(),
  userId: integer("user_id").notNull().references(() => users.id),
  title: text("title").notNull(),
});
const usersRelations = relations(users, ({ many }) => ({ posts: many(posts) }));
const postsRelations = relations(posts, ({ one }) => ({ author: one(users, { fields: [posts.userId], references: [users.id] }) }));
const schema = { users, posts, usersRelations, postsRelations };
type Db = PostgresJsDatabase<typeof schema>;

const { admin, kit, closers, raw, piloted, reset } = integrationFixture("integ_drizzle");

function orm(client: Sql<any>): Db {
  return drizzle(client, { schema });
}

/** Runs `scenario` on a fresh data set, raw then through pilot, and expects the same outcome. */
async function same(scenario: (db: Db) => Promise<unknown>): Promise<unknown> {
  await reset();
  const expected = await outcome(() => scenario(orm(raw)));
  await reset();
  const actual = await outcome(() => scenario(orm(piloted.sql)));
  expect(actual).toEqual(expected);
  return expected;
}

describe("drizzle: raw postgres.js and pilot() give the same results and errors", () => {
  test("CRUD", async () => {
    const result = await same(async (db) => {
      const inserted = await db.insert(users).values({ name: "dee", age: 22 }).returning();
      const updated = await db.update(users).set({ age: 23 }).where(eq(users.name, "dee")).returning({ id: users.id, age: users.age });
      const deleted = await db.delete(users).where(eq(users.name, "cy")).returning({ id: users.id });
      const all = await db.select().from(users).orderBy(asc(users.id));
      return { inserted, updated, deleted, all };
    });
    expect(result).toMatchObject({ ok: { inserted: [{ id: 4, name: "dee", age: 22 }], deleted: [{ id: 3 }] } });
  });

  test("joins", async () => {
    const result = await same((db) =>
      db.select({ name: users.name, title: posts.title }).from(users).leftJoin(posts, eq(posts.userId, users.id)).orderBy(
        asc(users.id),
        asc(posts.id),
      )
    );
    expect(result).toEqual({ ok: [{ name: "ada", title: "a1" }, { name: "ada", title: "a2" }, { name: "bob", title: "b1" }, { name: "cy", title: null }] });
  });

  test("relational queries (db.query.*)", async () => {
    const result = await same(async (db) => ({
      many: await db.query.users.findMany({ with: { posts: { orderBy: [asc(posts.id)] } }, orderBy: [asc(users.id)] }),
      first: await db.query.posts.findFirst({ where: eq(posts.title, "b1"), with: { author: true } }),
    }));
    expect(result).toMatchObject({ ok: { first: { title: "b1", author: { name: "bob" } } } });
  });

  test("prepared statements", async () => {
    const result = await same(async (db) => {
      const byId = db.select().from(users).where(eq(users.id, dsql.placeholder("id"))).prepare("integ_drizzle_by_id");
      return [await byId.execute({ id: 1 }), await byId.execute({ id: 2 }), await byId.execute({ id: 99 })];
    });
    expect(result).toEqual({ ok: [[{ id: 1, name: "ada", age: 36 }], [{ id: 2, name: "bob", age: 41 }], []] });
  });

  test("transactions with nested transactions (savepoints)", async () => {
    const result = await same(async (db) => {
      const committed = await db.transaction(async (tx) => {
        await tx.insert(users).values({ name: "tx-outer" });
        await tx.transaction(async (inner) => {
          await inner.insert(users).values({ name: "tx-kept" });
        });
        // a nested transaction rolled back by drizzle's rollback(): only the savepoint is undone
        const rolledBack = await tx.transaction(async (inner) => {
          await inner.insert(users).values({ name: "tx-undone" });
          inner.rollback();
        }).catch((error: Error) => error.constructor.name);
        // a nested transaction that fails with a unique violation, caught by the outer one
        const failed = await tx.transaction(async (inner) => {
          await inner.insert(users).values({ name: "ada" });
        }).catch((error: Error) => error.constructor.name);
        return { rolledBack, failed };
      });
      const outerRolledBack = await db.transaction(async (tx) => {
        await tx.insert(users).values({ name: "tx-gone" });
        tx.rollback();
      }).catch((error: Error) => error.constructor.name);
      const names = await db.select({ name: users.name }).from(users).orderBy(asc(users.id));
      return { committed, outerRolledBack, names: names.map((n) => n.name) };
    });
    expect(result).toEqual({
      ok: {
        committed: { rolledBack: "TransactionRollbackError", failed: "DrizzleQueryError" },
        outerRolledBack: "TransactionRollbackError",
        names: ["ada", "bob", "cy", "tx-outer", "tx-kept"],
      },
    });
  });

  test("transaction with an isolation level (SET TRANSACTION)", async () => {
    await same((db) =>
      db.transaction((tx) => tx.execute(dsql`select current_setting('transaction_isolation') as level`), {
        isolationLevel: "serializable",
        accessMode: "read only",
      })
    );
  });

  test("a failing statement: unique violation, alone and inside a transaction", async () => {
    const alone = await same((db) => db.insert(users).values({ name: "ada" }));
    expect(alone).toMatchObject({ error: { name: "DrizzleQueryError", cause: { name: "PostgresError", code: "23505" } } });
    const inTransaction = await same((db) =>
      db.transaction(async (tx) => {
        await tx.insert(users).values({ name: "new" });
        await tx.insert(users).values({ name: "bob" });
      })
    );
    expect(inTransaction).toMatchObject({ error: { name: "DrizzleQueryError", cause: { code: "23505" } } });
  });

  test("200 concurrent calls", async () => {
    const result = await same((db) =>
      Promise.all(Array.from({ length: 200 }, (_, i) => db.select({ id: users.id, name: users.name }).from(users).where(eq(users.id, (i % 3) + 1))))
    );
    expect((result as { ok: unknown[] }).ok).toHaveLength(200);
  });

  test("streaming: not offered by drizzle's postgres-js driver (no iterator on its queries)", () => {
    const db = orm(raw);
    expect("iterator" in db.select().from(users)).toBe(false);
  });
});

describe("drizzle: the interceptors apply", () => {
  test("deadline({ timeoutMs: 1000 }) stops a 2.5 s pg_sleep: DeadlineExceededError in the cause, cancelled on the server", async () => {
    const stack = pilotStack({ timeoutMs: 1000 });
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    const tag = `drizzle-deadline-${Date.now()}`;
    const settled = db.execute(dsql.raw(`select integ_drizzle_slow('${tag}')`)).then(() => undefined, (error: unknown) => error);
    await kit.slowStarted(tag);
    const error = await settled;
    expect(error).toBeInstanceOf(DrizzleQueryError);
    expect((error as Error).cause).toBeInstanceOf(DeadlineExceededError);
    expect(await kit.slowCompleted(tag)).toBe(false);
    expect(stack.deadline.stats().expired).toBe(1);
  });

  test("deadline inside db.transaction: the transaction is stopped and rolled back", async () => {
    const stack = pilotStack({ timeoutMs: 1000 });
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    const tag = `drizzle-deadline-tx-${Date.now()}`;
    const settled = db.transaction(async (tx) => {
      await tx.insert(users).values({ name: tag });
      await tx.execute(dsql.raw(`select integ_drizzle_slow('${tag}')`));
    }).then(() => undefined, (error: unknown) => error);
    await kit.slowStarted(tag);
    const error = await settled;
    expect(causes(error).some((e) => e instanceof DeadlineExceededError)).toBe(true);
    expect(await kit.slowCompleted(tag)).toBe(false);
    expect(await admin`select 1 from integ_drizzle_users where name = ${tag}`).toHaveLength(0);
  });

  test("control: ten sql.begin transactions failing with 40001 open the circuit (plain postgres.js API)", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    for (let i = 0; i < 10; i++) {
      await stack.sql.begin((tx) => tx`select integ_drizzle_fail_always()`).catch(() => {});
    }
    expect(stack.breaker.state("primary")).toBe("open");
  });

  // failing until errors are judged through their cause chain: the breaker sees DrizzleQueryError (no code) and counts nothing.
  test("breaker: ten db.transaction failing with 40001 open the circuit; the next call is rejected without I/O", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    for (let i = 0; i < 10; i++) {
      const error = await db.transaction((tx) => tx.execute(dsql`select integ_drizzle_fail_always()`)).catch((e: unknown) => e);
      expect(causes(error).some((e) => (e as { code?: unknown }).code === "40001" || e instanceof CircuitOpenError)).toBe(true);
    }
    expect(stack.breaker.state("primary")).toBe("open");
    const rejected = await db.select().from(users).catch((e: unknown) => e);
    expect(causes(rejected).some((e) => e instanceof CircuitOpenError)).toBe(true);
  });

  // failing until retry() reads the cause chain: DrizzleQueryError has no top-level code, so the transaction is not re-run.
  test("retry: a db.transaction failing once with 40001 is re-run and commits once", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    await reset();
    await kit.resetFailOnce();
    let runs = 0;
    const result = await db.transaction(async (tx) => {
      runs++;
      await tx.insert(users).values({ name: "retried" });
      await tx.execute(dsql`select integ_drizzle_fail_once()`);
      return "committed";
    });
    expect(result).toBe("committed");
    expect(runs).toBe(2);
    expect(await kit.failOnceCalls()).toBe(2);
    expect(await admin`select 1 from integ_drizzle_users where name = 'retried'`).toHaveLength(1);
    expect(stack.retry.stats()).toMatchObject({ retries: { serialization: 1 }, recovered: 1 });
  });

  test("retry: a plain drizzle write failing with 40001 outside a transaction is not retried (same error as raw)", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    await kit.resetFailOnce();
    const viaPilot = await outcome(() => orm(stack.sql).execute(dsql`select integ_drizzle_fail_once()`));
    expect(await kit.failOnceCalls()).toBe(1);
    await kit.resetFailOnce();
    const viaRaw = await outcome(() => orm(raw).execute(dsql`select integ_drizzle_fail_once()`));
    expect(viaPilot).toEqual(viaRaw);
    expect(stack.retry.stats().retries.serialization).toBe(0);
  });

  // failing until monitor() matches a wrapped error to its child's: today it counts 2 errors (the PostgresError, then DrizzleQueryError).
  test("monitor: one failed db.transaction counts as one error and one transaction", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    await reset();
    const error = await db.transaction(async (tx) => {
      await tx.insert(users).values({ name: "will-fail" });
      await tx.insert(users).values({ name: "ada" });
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DrizzleQueryError);
    const totals = stack.monitor.stats().totals;
    expect({ errors: totals.errors, transactions: totals.transactions }).toEqual({ errors: 1, transactions: 1 });
  });

  test("tracing: db.transaction is a transaction span with its queries as children", async () => {
    const stack = pilotStack();
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    await reset();
    await db.transaction(async (tx) => {
      await tx.insert(users).values({ name: "traced" });
      await tx.select().from(users).where(eq(users.name, "traced"));
    });
    const spans = stack.spans();
    const transaction = spans.find((s) => s.name === "transaction");
    expect(transaction).toBeDefined();
    const children = spans.filter((s) => s.parentSpanContext?.spanId === transaction!.spanContext().spanId);
    expect(children.map((s) => s.name)).toEqual(["INSERT integ_drizzle_users", "SELECT integ_drizzle_users"]);
  });

  test("affinity: drizzle reads outside a transaction go to the replica lane, writes and transactions to the primary", async () => {
    const stack = pilotStack({ replica: true });
    closers.push(() => stack.close());
    const db = orm(stack.sql);
    await reset();
    await db.select().from(posts);
    await db.insert(posts).values({ userId: 1, title: "routed" });
    await db.transaction((tx) => tx.select().from(posts));
    const lanes = stack.spans().map((s) => [s.name, s.attributes["pgpilot.lane"]]);
    expect(lanes).toEqual([
      ["SELECT integ_drizzle_posts", "replica"],
      ["INSERT integ_drizzle_posts", "primary"],
      ["SELECT integ_drizzle_posts", "primary"],
      ["transaction", "primary"],
    ]);
  });
});
