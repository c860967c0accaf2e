/**
 * Drop-in parity: every postgres.js call of DESIGN §1 gives the same result through pilot()
 * with a no-op interceptor as it does raw, and the chain sees exactly the right operations.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { pilot } from "../../mod.ts";
import { recorder } from "../support/recorder.ts";
import { testUrl } from "../support/db.ts";
import { until } from "../support/kit.ts";

const table = `parity_${Math.random().toString(36).slice(2, 8)}`;
const raw = postgres(testUrl(), { max: 4, onnotice: () => {} });
const rec = recorder();
const sql = pilot(postgres(testUrl(), { max: 4, onnotice: () => {} }), { interceptors: [rec] });

beforeAll(async () => {
  await raw`create table ${raw(table)} (id int primary key, name text not null, tags text[], doc jsonb)`;
  await raw`insert into ${raw(table)} ${raw([{ id: 1, name: "a" }, { id: 2, name: "b" }, { id: 3, name: "c" }])}`;
});
afterAll(async () => {
  await raw`drop table if exists ${raw(table)}`;
  await raw.end({ timeout: 1 });
  await sql.close({ timeout: 1 });
});
beforeEach(() => rec.clear());

/** Run the same call on raw and wrapped; both results must be equal. */
async function same<T>(call: (db: typeof raw) => Promise<T>): Promise<T> {
  const expected = await call(raw);
  rec.clear();
  const actual = await call(sql as unknown as typeof raw);
  expect(plain(actual)).toEqual(plain(expected));
  return actual;
}

/** postgres.js results are arrays with extra fields (count, command, columns, statement). */
function plain(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  const result = value as unknown as Record<string, unknown>;
  return {
    rows: [...value].map(plain),
    count: result.count,
    command: result.command,
    columns: (result.columns as { name: string; type: number }[] | undefined)?.map((c) => [c.name, c.type]),
  };
}

function kinds(): string[] {
  return rec.seen.map((s) => `${s.kind}:${s.command}${s.parentKind ? `<${s.parentKind}` : ""}`);
}

describe("queries", () => {
  test("tagged template with parameters", async () => {
    await same((db) => db`select id, name from ${db(table)} where id = ${2}`);
    expect(kinds()).toEqual(["query:SELECT"]);
    expect(rec.seen[0]!.readOnly).toBe(true);
  });

  test("nested fragments are never operations", async () => {
    await same((db) => {
      const where = db`where id > ${1}`;
      const order = db`order by id desc`;
      return db`select id from ${db(table)} ${where} ${order}`;
    });
    expect(kinds()).toEqual(["query:SELECT"]);
  });

  test("sql(object) insert helper and sql(array, ...columns)", async () => {
    await same(async (db) => {
      const rows = await db`insert into ${db(table)} ${db({ id: 10, name: "x" }, "id", "name")} returning id, name`;
      await db`delete from ${db(table)} where id = 10`;
      return rows;
    });
    expect(kinds()).toEqual(["query:INSERT", "query:DELETE"]);
    await same((db) => db`select name from ${db(table)} where id in ${db([1, 3])} order by id`);
  });

  test("update helper", async () => {
    await same(async (db) => {
      const rows = await db`update ${db(table)} set ${db({ name: "bb" }, "name")} where id = 2 returning name`;
      await db`update ${db(table)} set name = 'b' where id = 2`;
      return rows;
    });
    expect(rec.seen.map((s) => s.command)).toEqual(["UPDATE", "UPDATE"]);
  });

  test("unsafe with and without parameters", async () => {
    await same((db) => db.unsafe(`select id from ${table} where id = $1`, [3]));
    await same((db) => db.unsafe(`select count(*)::int as n from ${table}`));
    expect(kinds()).toEqual(["query:SELECT"]);
  });

  test("file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pgpilot-"));
    const path = join(dir, "q.sql");
    writeFileSync(path, `select id from ${table} where id = $1`);
    await same((db) => db.file(path, [1]));
    expect(rec.seen.length).toBe(1);
    expect(rec.seen[0]!.readOnly).toBe(false); // unknown text is never assumed read-only
  });

  test(".values() .raw() .simple() .describe()", async () => {
    await same((db) => db`select id, name from ${db(table)} order by id`.values());
    const rawRows = await sql`select id from ${sql(table)} where id = 1`.raw();
    expect(rawRows[0]![0]).toBeInstanceOf(Uint8Array);
    await same((db) => db`select 1 as one; select 2 as two`.simple());
    const described = await sql`select id from ${sql(table)} where id = ${1}`.describe();
    const expected = await raw`select id from ${raw(table)} where id = ${1}`.describe();
    expect(described.types).toEqual(expected.types);
    expect(described.columns.map((c: { name: string }) => c.name)).toEqual(["id"]);
    // same() clears the recorder before its wrapped call: .simple() and .describe() remain
    expect(rec.seen.map((s) => s.command)).toEqual(["SELECT", "SELECT"]);
  });

  test("awaited, executed and then'd again: one operation", async () => {
    const query = sql`select 1 as x`;
    query.execute();
    const a = await query;
    const b = await query.then((rows) => rows);
    expect(a).toBe(b);
    expect(rec.seen.length).toBe(1);
  });

  test("a query created but never started is never an operation", async () => {
    sql`select 1`;
    await Bun.sleep(5);
    expect(rec.seen.length).toBe(0);
  });

  test(".forEach() is one operation that ends when iteration ends", async () => {
    const ids: number[] = [];
    const result = await sql`select id from ${sql(table)} order by id`.forEach((row) => {
      ids.push(row.id);
      expect(rec.open).toBe(1);
    });
    expect(ids).toEqual([1, 2, 3]);
    expect(result.count).toBe(3);
    expect(rec.seen.length).toBe(1);
    expect(rec.seen[0]!.outcome).toBe("ok");
  });

  test(".cursor() as async iterator is one operation, open while iterating", async () => {
    const batches: number[][] = [];
    for await (const rows of sql`select id from ${sql(table)} order by id`.cursor(2)) {
      batches.push(rows.map((r) => r.id));
      expect(rec.open).toBe(1);
    }
    expect(batches).toEqual([[1, 2], [3]]);
    expect(rec.seen.length).toBe(1);
    expect(rec.open).toBe(0);
    expect(rec.seen[0]!.outcome).toBe("ok");
  });

  test(".cursor() with break ends the operation", async () => {
    for await (const _rows of sql`select id from ${sql(table)} order by id`.cursor(1)) break;
    await until(() => rec.open === 0, { message: "the cursor's operation to end" });
    expect(rec.open).toBe(0);
    expect(rec.seen.length).toBe(1);
    expect((await sql`select 1 as ok`)[0]!.ok).toBe(1);
  });

  test(".cursor(n, fn) callback form", async () => {
    const seen: number[] = [];
    await sql`select id from ${sql(table)} order by id`.cursor(2, (rows) => void seen.push(rows.length));
    expect(seen).toEqual([2, 1]);
    expect(rec.seen.length).toBe(1);
  });

  test(".cancel() reaches the server", async () => {
    const query = sql`select pg_sleep(5)`;
    query.execute();
    await Bun.sleep(100);
    query.cancel();
    const error = await query.catch((e) => e);
    expect(error.code).toBe("57014");
    expect(rec.seen[0]!.outcome).toBe("error");
    expect((await sql`select 1 as ok`)[0]!.ok).toBe(1);
  });

  test(".cancel() before it starts rejects like postgres.js", async () => {
    const rawQuery = raw`select 1`;
    rawQuery.cancel();
    const expected = await rawQuery.catch((e) => e);
    const query = sql`select 1`;
    query.cancel();
    const error = await query.catch((e) => e);
    expect(error.code).toBe(expected.code);
    expect(error.message).toBe(expected.message);
  });

  test("an AbortSignal cancels a running query on the server", async () => {
    const controller = new AbortController();
    // A long sleep: on a loaded machine the query may take a while to reach the server, and it
    // must still be running when it is seen there (the abort ends it at once).
    const pending = sql.with({ signal: controller.signal })`select pg_sleep(60) as aborted_by_signal`.catch((e) => e);
    await until(async () => {
      const [{ n }] = await raw`select count(*)::int as n from pg_stat_activity where query like '%aborted_by_signal%' and state = 'active' and pid <> pg_backend_pid()`;
      return n >= 1;
    }, { message: "the query to run on the server", timeoutMs: 30_000 });
    controller.abort();
    const error = await pending;
    // The caller's own reason (an AbortError), with the server's cancel as its cause.
    expect(error).toBe(controller.signal.reason);
    expect(error.cause.code).toBe("57014");
    // By its marker: another file's orphaned pg_sleep(5) (a reset proxy connection) may still run.
    const [{ n }] = await raw`select count(*)::int as n from pg_stat_activity where query like '%aborted_by_signal%' and state = 'active' and pid <> pg_backend_pid()`;
    expect(n).toBe(0);
  });

  test("sql.array, sql.json, sql.typed", async () => {
    await same((db) => db`select ${db.array([1, 2, 3])}::int[] as a`);
    await same((db) => db`select ${db.json({ a: [1, "x"] })}::jsonb as j`);
    await same((db) => db`select ${db.typed(5, 23)} as t`);
    await same((db) => db`update ${db(table)} set tags = ${db.array(["x", "y"])}, doc = ${db.json({ k: 1 })} where id = 1 returning tags, doc`);
  });

  test("sql.options and postgres.js statics pass through", () => {
    expect(sql.options.max).toBe(4);
    expect(sql.PostgresError).toBe(raw.PostgresError);
    expect(typeof sql.subscribe).toBe("function");
    expect(typeof sql.largeObject).toBe("function");
  });
});

describe("errors", () => {
  test("a unique violation reaches the caller as the same PostgresError", async () => {
    const error = await sql`insert into ${sql(table)} (id, name) values (1, 'dup')`.catch((e) => e);
    expect(error).toBeInstanceOf(raw.PostgresError);
    expect(error.code).toBe("23505");
    expect(error.constraint_name).toBe(`${table}_pkey`);
    expect(rec.seen[0]!.outcome).toBe("error");
  });

  test("syntax errors pass through unchanged", async () => {
    const expected = await raw`selec 1`.catch((e) => e);
    const error = await sql`selec 1`.catch((e) => e);
    expect(error.code).toBe(expected.code);
    expect(error.message).toBe(expected.message);
    expect(error.constructor).toBe(expected.constructor);
  });
});

describe("transactions", () => {
  test("begin is one operation with child operations", async () => {
    await same((db) =>
      db.begin(async (tx) => {
        await tx`insert into ${tx(table)} (id, name) values (20, 't')`;
        const rows = await tx`select name from ${tx(table)} where id = 20`;
        await tx`delete from ${tx(table)} where id = 20`;
        return rows;
      })
    );
    expect(kinds()).toEqual(["transaction:BEGIN", "query:INSERT<transaction", "query:SELECT<transaction", "query:DELETE<transaction"]);
    const parent = rec.seen[0]!.op;
    expect(rec.seen.slice(1).every((s) => s.op.parent === parent)).toBe(true);
  });

  test("begin with options and the array-return form", async () => {
    await same((db) =>
      db.begin("read write", (tx) => [tx`select 1 as a`, tx`select 2 as b`]) as Promise<unknown>
    );
    expect(kinds()).toEqual(["transaction:BEGIN", "query:SELECT<transaction", "query:SELECT<transaction"]);
  });

  test("savepoint rolls back its part only", async () => {
    const names = await sql.begin(async (tx) => {
      await tx`insert into ${tx(table)} (id, name) values (30, 'kept')`;
      await tx.savepoint(async (sp) => {
        await sp`insert into ${sp(table)} (id, name) values (31, 'dropped')`;
        throw new Error("roll back the savepoint");
      }).catch(() => {});
      await tx.savepoint("named", (sp) => sp`insert into ${sp(table)} (id, name) values (32, 'also kept')`);
      return tx`select name from ${tx(table)} where id >= 30 order by id`;
    });
    expect(names.map((r) => r.name)).toEqual(["kept", "also kept"]);
    expect(rec.seen.filter((s) => s.kind === "query").every((s) => s.parentKind === "transaction")).toBe(true);
    await raw`delete from ${raw(table)} where id >= 30`;
  });

  test("a failing transaction rolls back and rejects with the same error", async () => {
    const error = await sql.begin(async (tx) => {
      await tx`insert into ${tx(table)} (id, name) values (40, 'x')`;
      await tx`insert into ${tx(table)} (id, name) values (40, 'x')`;
    }).catch((e) => e);
    expect(error.code).toBe("23505");
    const rows = await raw`select 1 from ${raw(table)} where id = 40`;
    expect(rows.length).toBe(0);
    expect(rec.seen[0]!.outcome).toBe("error");
  });
});

describe("reserve, listen, notify, subscribe, end", () => {
  test("reserve is one operation that lasts until release", async () => {
    const reserved = await sql.reserve();
    const [{ pid: a }] = await reserved`select pg_backend_pid() as pid`;
    const [{ pid: b }] = await reserved`select pg_backend_pid() as pid`;
    expect(a).toBe(b);
    expect(rec.open).toBe(1);
    reserved.release();
    await until(() => rec.open === 0, { message: "the reservation's operation to end" });
    expect(rec.open).toBe(0);
    expect(kinds()).toEqual(["reserve:RESERVE", "query:SELECT<reserve", "query:SELECT<reserve"]);
  });

  test("listen is one operation for its setup; notify is a query", async () => {
    const received: string[] = [];
    let resolveNotified!: () => void;
    const notified = new Promise<void>((r) => (resolveNotified = r));
    const listening = await sql.listen("pgpilot_test", (payload) => {
      received.push(payload);
      resolveNotified();
    });
    expect(kinds()).toEqual(["listen:LISTEN"]);
    await sql.notify("pgpilot_test", "hello");
    await notified;
    expect(received).toEqual(["hello"]);
    expect(kinds()).toEqual(["listen:LISTEN", "query:SELECT"]);
    await listening.unlisten();
  });

  test("end() ends the pool; later queries fail with CONNECTION_ENDED like postgres.js", async () => {
    const own = pilot(postgres(testUrl(), { max: 1 }), { interceptors: [recorder()] });
    await own`select 1`;
    await own.end({ timeout: 1 });
    const error = await own`select 1`.catch((e) => e);
    expect(error.code).toBe("CONNECTION_ENDED");
  });
});
