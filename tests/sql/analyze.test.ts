import { expect, test } from "bun:test";
import { analyzeSql } from "../../lib/sql/mod.ts";

interface Case {
  sql: string;
  command: string;
  collection?: string;
  tables?: string[];
  readOnly: boolean;
}

// Real-world statements; `tables` defaults to `[collection]` (or [] without one).
const cases: Case[] = [
  // Plain reads.
  { sql: "SELECT * FROM users WHERE id = $1", command: "SELECT", collection: "users", readOnly: true },
  { sql: "select 1", command: "SELECT", readOnly: true },
  { sql: "SELECT now()", command: "SELECT", readOnly: true },
  {
    sql: `SELECT u.id, o.total FROM public.users u
          JOIN "Order Items" o ON o.user_id = u.id, accounts a
          LEFT OUTER JOIN billing.invoices i USING (account_id)
          WHERE a.owner = u.id AND o.total > -10`,
    command: "SELECT",
    collection: "public.users",
    tables: ["public.users", "Order Items", "accounts", "billing.invoices"],
    readOnly: true,
  },
  {
    sql: "select * from a where x in (select y from b) and exists (select 1 from c where c.id = a.id)",
    command: "SELECT",
    collection: "a",
    tables: ["a", "b", "c"],
    readOnly: true,
  },
  {
    sql: "(SELECT a FROM x) UNION ALL (SELECT a FROM y)",
    command: "SELECT",
    collection: "x",
    tables: ["x", "y"],
    readOnly: true,
  },
  { sql: "select * from generate_series(1, 10) g", command: "SELECT", readOnly: true },
  { sql: "select * from (select 1) sub", command: "SELECT", readOnly: true },
  {
    sql: "select * from (users u join orders o on o.user_id = u.id)",
    command: "SELECT",
    collection: "users",
    tables: ["users", "orders"],
    readOnly: true,
  },
  {
    sql: "SELECT EXTRACT(YEAR FROM created_at), substring(name FROM 2 FOR 3), a IS DISTINCT FROM b FROM events",
    command: "SELECT",
    collection: "events",
    readOnly: true,
  },
  { sql: "table users", command: "TABLE", collection: "users", readOnly: true },
  { sql: "VALUES (1, 'a'), (2, 'b')", command: "VALUES", readOnly: true },
  { sql: "SHOW search_path", command: "SHOW", readOnly: true },
  { sql: "  \n select 1;  ", command: "SELECT", readOnly: true },
  { sql: "select 1; select 2;", command: "SELECT", readOnly: true },

  // Words that only look like writes.
  {
    sql: "/* delete old rows? no: just count */ SELECT created_at, updated_by, insert_count FROM update_log",
    command: "SELECT",
    collection: "update_log",
    readOnly: true,
  },
  {
    sql: "select 'insert into users values (1); delete from users' as note from audit -- drop table audit",
    command: "SELECT",
    collection: "audit",
    readOnly: true,
  },
  { sql: "select $$update t set x = 1$$ from t", command: "SELECT", collection: "t", readOnly: true },
  { sql: 'select "delete" from "update_log"', command: "SELECT", collection: "update_log", readOnly: true },
  { sql: "select nextval_count, my_setval from seq_stats", command: "SELECT", collection: "seq_stats", readOnly: true },

  // Reads that are writes.
  { sql: "SELECT * FROM jobs WHERE state = 'ready' FOR UPDATE SKIP LOCKED LIMIT 1", command: "SELECT", collection: "jobs", readOnly: false },
  { sql: "select * from jobs for no key update", command: "SELECT", collection: "jobs", readOnly: false },
  { sql: "select * from jobs for share", command: "SELECT", collection: "jobs", readOnly: false },
  { sql: "select * from jobs for key share of jobs nowait", command: "SELECT", collection: "jobs", readOnly: false },
  {
    sql: "SELECT * INTO TEMP TABLE recent FROM events WHERE at > now() - interval '1 day'",
    command: "SELECT",
    collection: "events",
    tables: ["recent", "events"],
    readOnly: false,
  },
  { sql: "SELECT pg_advisory_lock(42)", command: "SELECT", readOnly: false },
  { sql: "select pg_try_advisory_xact_lock(hashtext($1))", command: "SELECT", readOnly: false },
  { sql: "select pg_advisory_unlock_all()", command: "SELECT", readOnly: false },
  { sql: "SELECT nextval('orders_id_seq')", command: "SELECT", readOnly: false },
  { sql: "select pg_catalog.setval('s', 10)", command: "SELECT", readOnly: false },
  { sql: "select pg_notify('jobs', 'x')", command: "SELECT", readOnly: false },
  { sql: "select set_config('app.user', $1, true)", command: "SELECT", readOnly: false },
  { sql: "select txid_current()", command: "SELECT", readOnly: false },
  { sql: "select pg_terminate_backend(pid) from pg_stat_activity", command: "SELECT", collection: "pg_stat_activity", readOnly: false },
  { sql: "select lo_unlink(oid) from images", command: "SELECT", collection: "images", readOnly: false },
  { sql: "select * from nextval('s')", command: "SELECT", readOnly: false },
  { sql: "select 1; delete from a", command: "SELECT", tables: ["a"], readOnly: false },

  // Common table expressions.
  {
    sql: "WITH recent AS (SELECT * FROM orders WHERE at > $1) SELECT * FROM recent",
    command: "SELECT",
    tables: ["orders"],
    readOnly: true,
  },
  {
    sql: "with recursive tree(id, parent) as (select id, parent from nodes where id = 1 union all " +
      "select n.id, n.parent from nodes n join tree t on n.parent = t.id) search depth first by id set ord " +
      "select * from tree order by ord",
    command: "SELECT",
    tables: ["nodes"],
    readOnly: true,
  },
  {
    sql: "WITH moved AS (DELETE FROM queue WHERE id = 7 RETURNING *) INSERT INTO archive SELECT * FROM moved",
    command: "INSERT",
    collection: "archive",
    tables: ["queue", "archive"],
    readOnly: false,
  },
  {
    sql: "with d as (delete from sessions where expires_at < now() returning id) select count(*) from d",
    command: "SELECT",
    tables: ["sessions"],
    readOnly: false,
  },
  {
    sql: "WITH a AS MATERIALIZED (SELECT 1), b AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM a, b",
    command: "SELECT",
    tables: ["t"],
    readOnly: false,
  },
  {
    sql: "with src as (select * from staging) update target set v = src.v from src where target.id = src.id",
    command: "UPDATE",
    collection: "target",
    tables: ["staging", "target"],
    readOnly: false,
  },
  {
    sql: "WITH x AS (SELECT nextval('s') AS id) SELECT id FROM x",
    command: "SELECT",
    readOnly: false,
  },

  // EXPLAIN.
  { sql: "EXPLAIN SELECT * FROM users", command: "EXPLAIN", collection: "users", readOnly: true },
  { sql: "EXPLAIN DELETE FROM users", command: "EXPLAIN", collection: "users", readOnly: true },
  { sql: "EXPLAIN ANALYZE DELETE FROM users WHERE id = 1", command: "EXPLAIN", collection: "users", readOnly: false },
  { sql: "explain analyse verbose update t set x = 1", command: "EXPLAIN", collection: "t", readOnly: false },
  { sql: "EXPLAIN (ANALYZE, BUFFERS) INSERT INTO t VALUES (1)", command: "EXPLAIN", collection: "t", readOnly: false },
  { sql: "EXPLAIN (ANALYZE off, COSTS) DELETE FROM t", command: "EXPLAIN", collection: "t", readOnly: true },
  { sql: "EXPLAIN ANALYZE SELECT * FROM t", command: "EXPLAIN", collection: "t", readOnly: true },

  // Writes.
  { sql: "INSERT INTO users (email) VALUES ($1) RETURNING id", command: "INSERT", collection: "users", readOnly: false },
  {
    sql: "insert into t as x (a, b) select a, b from s on conflict (a) do update set b = excluded.b, c = 2",
    command: "INSERT",
    collection: "t",
    tables: ["t", "s"],
    readOnly: false,
  },
  { sql: "UPDATE accounts SET balance = balance - 10, updated_at = now() WHERE id = 1", command: "UPDATE", collection: "accounts", readOnly: false },
  {
    sql: "update only t set a = 1 from b, c where t.id = b.id",
    command: "UPDATE",
    collection: "t",
    tables: ["t", "b", "c"],
    readOnly: false,
  },
  { sql: "DELETE FROM sessions WHERE expires_at < now()", command: "DELETE", collection: "sessions", readOnly: false },
  {
    sql: "delete from a using b, c where a.id = b.id",
    command: "DELETE",
    collection: "a",
    tables: ["a", "b", "c"],
    readOnly: false,
  },
  {
    sql: "MERGE INTO inventory t USING shipments s ON t.sku = s.sku " +
      "WHEN MATCHED THEN UPDATE SET qty = t.qty + s.qty WHEN NOT MATCHED THEN INSERT (sku, qty) VALUES (s.sku, s.qty)",
    command: "MERGE",
    collection: "inventory",
    tables: ["inventory", "shipments"],
    readOnly: false,
  },
  { sql: 'DELETE FROM "MySchema"."My""Table" WHERE a = 1', command: "DELETE", collection: 'MySchema.My"Table', readOnly: false },
  { sql: "update public.Users set x = 1", command: "UPDATE", collection: "public.Users", readOnly: false },
  { sql: "COPY users (id, email) FROM STDIN WITH (FORMAT csv)", command: "COPY", collection: "users", readOnly: false },
  { sql: "COPY (SELECT * FROM users) TO STDOUT", command: "COPY", tables: ["users"], readOnly: false },
  { sql: "TRUNCATE TABLE a, b RESTART IDENTITY", command: "TRUNCATE", collection: "a", tables: ["a", "b"], readOnly: false },
  { sql: "truncate only logs", command: "TRUNCATE", collection: "logs", readOnly: false },
  { sql: "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE", command: "LOCK", collection: "accounts", readOnly: false },

  // DDL.
  {
    sql: "CREATE TABLE IF NOT EXISTS app.orders (id bigint primary key, user_id int references users(id) on delete cascade)",
    command: "CREATE",
    collection: "app.orders",
    readOnly: false,
  },
  {
    sql: "create unlogged table snapshot as select * from events",
    command: "CREATE",
    collection: "snapshot",
    tables: ["snapshot", "events"],
    readOnly: false,
  },
  { sql: "ALTER TABLE ONLY users ADD COLUMN created_at timestamptz", command: "ALTER", collection: "users", readOnly: false },
  { sql: "DROP TABLE IF EXISTS a, b CASCADE", command: "DROP", collection: "a", tables: ["a", "b"], readOnly: false },
  { sql: "CREATE INDEX CONCURRENTLY i ON users USING btree (email)", command: "CREATE", readOnly: false },
  {
    sql: "CREATE FUNCTION f() RETURNS TABLE (id int) LANGUAGE sql AS $$ SELECT id FROM users $$",
    command: "CREATE",
    readOnly: false,
  },
  {
    sql: "CREATE TRIGGER t BEFORE INSERT OR UPDATE OF email ON users FOR EACH ROW EXECUTE FUNCTION check_email()",
    command: "CREATE",
    readOnly: false,
  },
  { sql: "GRANT SELECT ON TABLE users TO reader", command: "GRANT", collection: undefined, tables: ["users"], readOnly: false },
  { sql: "REVOKE SELECT, DELETE ON users FROM reader", command: "REVOKE", readOnly: false },

  // Session and transaction control: writes, by rule.
  { sql: "BEGIN", command: "BEGIN", readOnly: false },
  { sql: "START TRANSACTION READ ONLY", command: "START", readOnly: false },
  { sql: "SET statement_timeout = 1000", command: "SET", readOnly: false },
  { sql: "CALL refresh_totals()", command: "CALL", readOnly: false },
  { sql: "DO $$ BEGIN PERFORM 1; END $$", command: "DO", readOnly: false },
  { sql: "VACUUM ANALYZE users", command: "VACUUM", readOnly: false },
  { sql: "begin; update x set a = 1; commit", command: "BEGIN", tables: ["x"], readOnly: false },

  // Nothing, or nothing known.
  { sql: "", command: "UNKNOWN", readOnly: false },
  { sql: "   ", command: "UNKNOWN", readOnly: false },
  { sql: "-- only a comment", command: "UNKNOWN", readOnly: false },
  { sql: ";;", command: "UNKNOWN", readOnly: false },
  { sql: "frobnicate the database", command: "UNKNOWN", readOnly: false },
  { sql: "select * from 'unterminated", command: "SELECT", readOnly: true },
];

for (const entry of cases) {
  test(`analyzeSql: ${entry.sql.replace(/\s+/g, " ").slice(0, 90) || "(empty)"}`, () => {
    const analysis = analyzeSql(entry.sql);
    expect(analysis.command).toBe(entry.command);
    expect(analysis.collection).toBe(entry.collection);
    expect([...analysis.tables]).toEqual(entry.tables ?? (entry.collection === undefined ? [] : [entry.collection]));
    expect(analysis.readOnly).toBe(entry.readOnly);
  });
}

test("analysis objects are frozen", () => {
  const analysis = analyzeSql("select * from t");
  expect(Object.isFrozen(analysis)).toBe(true);
  expect(Object.isFrozen(analysis.tables)).toBe(true);
});

test("function bodies in BEGIN ATOMIC do not split the statement", () => {
  const analysis = analyzeSql(
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END; SELECT 3",
  );
  expect(analysis.command).toBe("CREATE");
  expect(analysis.normalized).toBe(
    "create function f() returns int language sql begin atomic select case when true then ? end; select ?; end; select ?",
  );
});

test("tables are deduplicated the way PostgreSQL resolves names", () => {
  expect(analyzeSql("select * from Users join users on true join USERS on true").tables).toEqual(["Users"]);
  expect(analyzeSql('select * from users join "Users" on true').tables).toEqual(["users", "Users"]);
});

test("lane hints come from comments only", () => {
  expect(analyzeSql("/* pgpilot:lane=analytics */ select count(*) from events").laneHint).toBe("analytics");
  expect(analyzeSql("select 1 -- pgpilot:lane=replica-2").laneHint).toBe("replica-2");
  expect(analyzeSql("select 1 /* app:x, pgpilot:lane=batch.nightly */").laneHint).toBe("batch.nightly");
  expect(analyzeSql("select 'pgpilot:lane=primary'").laneHint).toBeUndefined();
  expect(analyzeSql("select 1").laneHint).toBeUndefined();
  expect(analyzeSql("/* pgpilot:lane=a */ select /* pgpilot:lane=b */ 1").laneHint).toBe("a");
});

test("the lane hint changes neither the fingerprint nor the redacted text", () => {
  const plain = analyzeSql("select * from t where id = 1");
  const hinted = analyzeSql("/* pgpilot:lane=replica */ select * from t where id = 2");
  expect(hinted.fingerprint).toBe(plain.fingerprint);
  expect(hinted.redacted).toBe("select * from t where id = ?");
});

test("normalized form", () => {
  const normalize = (sql: string): string => analyzeSql(sql).normalized;
  expect(normalize("SELECT  *\n\tFROM Users WHERE id = $1 -- x")).toBe("select * from users where id = ?");
  expect(normalize("select * from t where id in (1, 2, 3) and x = any(array[4, 5])")).toBe(
    "select * from t where id in (?) and x = any(array[?])",
  );
  expect(normalize("insert into t (a, b) values (1, 'x'), (2, 'y'), ($1, $2)")).toBe("insert into t(a, b) values (?, ?)");
  expect(normalize("select count(*), f(a, b) from t")).toBe("select count(*), f(a, b) from t");
  expect(normalize("select a::int, t.b, c[1] from t")).toBe("select a::int, t.b, c[?] from t");
  expect(normalize('select "Mixed"."Case" from t;')).toBe('select "Mixed"."Case" from t');
  expect(normalize("select x - 1, x-1, -1 from t")).toBe("select x - ?, x - ?, ? from t");
  expect(normalize("select 1; select 2")).toBe("select ?; select ?");
  expect(normalize("")).toBe("");
});

test("fingerprints group executions of one shape", () => {
  const fingerprint = (sql: string): string => analyzeSql(sql).fingerprint;
  expect(fingerprint("SELECT * FROM t WHERE a = 1")).toBe(fingerprint("select *\nfrom t where a = 'x' /* c */"));
  expect(fingerprint("select * from t where a = -5")).toBe(fingerprint("select * from t where a = $1"));
  expect(fingerprint("select * from t where a in (1)")).toBe(fingerprint("select * from t where a in (1, 2, 3, 4)"));
  expect(fingerprint("select * from t where a = 1")).not.toBe(fingerprint("select * from t where b = 1"));
  expect(fingerprint("select * from t where a = 1")).not.toBe(fingerprint("select * from u where a = 1"));
  expect(fingerprint("")).toBe("cbf29ce484222325");
  expect(fingerprint("select 1")).toMatch(/^[0-9a-f]{16}$/);
});
