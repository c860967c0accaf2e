import { expect, test } from "bun:test";
import {
  analyzeSql,
  analyzeTemplate,
  analyzeUnsafe,
  MAX_CACHED_TEXT_LENGTH,
  type SqlTextAnalysis,
  UNSAFE_CACHE_LIMIT,
} from "../../lib/sql/mod.ts";

const sql = (strings: TemplateStringsArray, ..._values: unknown[]): SqlTextAnalysis => analyzeTemplate(strings);
// Unique per run, so that entries left by other test files cannot make a miss look like a hit.
const run = crypto.randomUUID().replaceAll("-", "");

test("a template is analyzed once per call site", () => {
  const results = [1, 2, 3].map((id) => sql`select * from users where id = ${id} and name = ${"x"}`);
  expect(results[1]).toBe(results[0]!);
  expect(results[2]).toBe(results[0]!);
  expect(results[0]!.text).toBe("select * from users where id = $1 and name = $2");
  expect(results[0]!.command).toBe("SELECT");
  expect(results[0]!.collection).toBe("users");
  expect(Object.isFrozen(results[0])).toBe(true);
});

test("a plain strings array works as a key too", () => {
  const strings = Object.freeze(["update t set a = ", " where id = ", ""]);
  const first = analyzeTemplate(strings);
  expect(analyzeTemplate(strings)).toBe(first);
  expect(first.text).toBe("update t set a = $1 where id = $2");
  expect(first.readOnly).toBe(false);
  // Same text, another array: analyzed again, same content.
  expect(analyzeTemplate([...strings])).not.toBe(first);
  expect(analyzeTemplate([...strings])).toEqual(first);
});

test("template and unsafe text of one shape share a fingerprint", () => {
  const template = sql`select * from orders where id = ${1}`;
  expect(analyzeUnsafe("select * from orders where id = 42").fingerprint).toBe(template.fingerprint);
});

test("unsafe text is cached per text, with its redacted text", () => {
  const text = `select * from t where note = 'secret ${run}'`;
  const first = analyzeUnsafe(text);
  expect(analyzeUnsafe(text)).toBe(first);
  expect(first.text).toBe("select * from t where note = ?");
  expect(first.text).toBe(first.redacted);
  expect(Object.isFrozen(first)).toBe(true);
  const { text: _text, ...analysis } = first;
  expect(analysis).toEqual({ ...analyzeSql(text) });
});

test("the unsafe cache evicts its least recently used entry beyond the limit", () => {
  expect(UNSAFE_CACHE_LIMIT).toBe(2000);
  const kept = `select 'kept ${run}'`;
  const evicted = `select 'evicted ${run}'`;
  const first = analyzeUnsafe(evicted);
  const keptFirst = analyzeUnsafe(kept);
  for (let index = 0; index < UNSAFE_CACHE_LIMIT - 2; index += 1) analyzeUnsafe(`select ${index} -- ${run} a`);
  // A hit makes `kept` the most recent; `evicted` is now the oldest of the last LIMIT entries.
  expect(analyzeUnsafe(kept)).toBe(keptFirst);
  analyzeUnsafe(`select 'one more ${run}'`);
  analyzeUnsafe(`select 'and another ${run}'`);
  expect(analyzeUnsafe(kept)).toBe(keptFirst);
  const again = analyzeUnsafe(evicted);
  expect(again).not.toBe(first);
  expect(again).toEqual(first);
});

test("the cache never holds more than the limit", () => {
  const probe = `select 'probe ${run}'`;
  const first = analyzeUnsafe(probe);
  for (let index = 0; index < UNSAFE_CACHE_LIMIT; index += 1) analyzeUnsafe(`select ${index} -- ${run} b`);
  expect(analyzeUnsafe(probe)).not.toBe(first);
});

test("very long unsafe text is analyzed but not cached", () => {
  const long = `select 1 from t where x in (${"1,".repeat(MAX_CACHED_TEXT_LENGTH / 2)}1)`;
  expect(long.length).toBeGreaterThan(MAX_CACHED_TEXT_LENGTH);
  const first = analyzeUnsafe(long);
  expect(first.collection).toBe("t");
  expect(first.text).toBe("select ? from t where x in (" + "?,".repeat(MAX_CACHED_TEXT_LENGTH / 2) + "?)");
  expect(analyzeUnsafe(long)).not.toBe(first);
  expect(analyzeUnsafe(long)).toEqual(first);
});
