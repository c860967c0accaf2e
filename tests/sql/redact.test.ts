import { expect, test } from "bun:test";
import { analyzeSql, fnv1a64 } from "../../lib/sql/mod.ts";

const redact = (sql: string): string => analyzeSql(sql).redacted;

test("literals become ?, names and parameters stay", () => {
  expect(redact("SELECT * FROM users WHERE email = 'a@b.c' AND age > 30 AND id = $1")).toBe(
    "SELECT * FROM users WHERE email = ? AND age > ? AND id = $1",
  );
  expect(redact("select E'it\\'s', $body$ secret $body$, 0xFF, 1.5e-3, -2, B'01', U&'d\\0061t' from t")).toBe(
    "select ?, ?, ?, ?, ?, ?, ? from t",
  );
  expect(redact("insert into \"Users\" (\"e-mail\") values ('x'), ('y')")).toBe(
    "insert into \"Users\" (\"e-mail\") values (?), (?)",
  );
  expect(redact("select a::int, t.b, count(*) from t")).toBe("select a::int, t.b, count(*) from t");
  expect(redact("select interval '1 day', date '2024-01-01'")).toBe("select interval ?, date ?");
});

test("comments go and whitespace collapses", () => {
  expect(redact("  select /* user 42 */ 1\n\n  from\tt -- password=hunter2\n")).toBe("select ? from t");
  expect(redact("select a/*x*/b")).toBe("select a b");
});

test("unterminated literals are redacted to the end", () => {
  expect(redact("select 'secret")).toBe("select ?");
  expect(redact("select $x$ secret")).toBe("select ?");
  expect(redact("select 1 /* secret")).toBe("select ?");
});

test("FNV-1a 64 test vectors", () => {
  expect(fnv1a64("")).toBe("cbf29ce484222325");
  expect(fnv1a64("a")).toBe("af63dc4c8601ec8c");
  expect(fnv1a64("foobar")).toBe("85944171f73967e8");
  // UTF-8 bytes, not UTF-16 code units.
  expect(fnv1a64("é")).not.toBe(fnv1a64("\u00e9".normalize("NFD")));
});
