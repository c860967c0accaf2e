/**
 * Cached analysis, so that a query executed a million times is analyzed once.
 *
 * @module
 */
import { analyzeSql, type SqlAnalysis } from "./analyze.ts";

/**
 * An analysis together with the text recorded for the query: the parameterized text of a tagged
 * template, the redacted text of `unsafe()` SQL.
 *
 * @example
 * ```ts
 * const analysis: SqlTextAnalysis = analyzeUnsafe("select 1");
 * analysis.text; // "select ?"
 * ```
 */
export interface SqlTextAnalysis extends SqlAnalysis {
  readonly text: string;
}

/**
 * How many distinct `unsafe()` texts keep their analysis; the least recently used is dropped
 * beyond it. Applications that build SQL strings (with values inlined) would otherwise grow the
 * cache without bound.
 *
 * @example
 * ```ts
 * UNSAFE_CACHE_LIMIT; // 2000
 * ```
 */
export const UNSAFE_CACHE_LIMIT = 2000;

/**
 * `unsafe()` texts longer than this are analyzed on every call and never cached: the cache holds
 * the text as its key plus the normalized and redacted copies, so one huge generated statement
 * (a bulk `INSERT … VALUES` of a whole file) would pin megabytes, and such statements rarely repeat.
 * At this bound the cache holds at most about 2000 × 8 KiB × 3 ≈ 48 MiB in the worst case.
 *
 * @example
 * ```ts
 * MAX_CACHED_TEXT_LENGTH; // 8192
 * ```
 */
export const MAX_CACHED_TEXT_LENGTH = 8_192;

// Keyed by the template strings array, whose identity is stable per call site; the WeakMap lets a
// call site's entry go with its code (a `new Function`, an unloaded module). Template text is not
// length-limited: the number of call sites is bounded by the program's source.
const templates = new WeakMap<TemplateStringsArray | readonly string[], SqlTextAnalysis>();
// A Map iterates in insertion order; re-inserting on every hit makes that recency order.
const unsafeTexts = new Map<string, SqlTextAnalysis>();

/**
 * The analysis of a tagged-template query, cached per strings array. Its `text` is the
 * parameterized text PostgreSQL receives: the strings joined with `$1`, `$2`, …
 *
 * @example
 * ```ts
 * const tag = (strings: TemplateStringsArray, ..._values: unknown[]) => analyzeTemplate(strings);
 * const analysis = tag`select * from users where id = ${42}`;
 * analysis.text; // "select * from users where id = $1"
 * ```
 */
export function analyzeTemplate(strings: TemplateStringsArray | readonly string[]): SqlTextAnalysis {
  const cached = templates.get(strings);
  if (cached !== undefined) return cached;
  let text = strings[0] ?? "";
  for (let index = 1; index < strings.length; index += 1) text += "$" + index + strings[index];
  const analysis: SqlTextAnalysis = Object.freeze({ ...analyzeSql(text), text });
  templates.set(strings, analysis);
  return analysis;
}

/**
 * The analysis of `unsafe()` text, cached per distinct text in a bounded LRU. Its `text` is the
 * redacted text: unsafe SQL often has values inlined, and those must not reach spans or logs.
 *
 * @example
 * ```ts
 * const analysis = analyzeUnsafe("delete from sessions where user_id = 42");
 * analysis.text; // "delete from sessions where user_id = ?"
 * analyzeUnsafe("delete from sessions where user_id = 42") === analysis; // true
 * ```
 */
export function analyzeUnsafe(text: string): SqlTextAnalysis {
  if (text.length > MAX_CACHED_TEXT_LENGTH) return withRedactedText(analyzeSql(text));
  const cached = unsafeTexts.get(text);
  if (cached !== undefined) {
    unsafeTexts.delete(text);
    unsafeTexts.set(text, cached);
    return cached;
  }
  const analysis = withRedactedText(analyzeSql(text));
  unsafeTexts.set(text, analysis);
  if (unsafeTexts.size > UNSAFE_CACHE_LIMIT) {
    const oldest = unsafeTexts.keys().next().value;
    if (oldest !== undefined) unsafeTexts.delete(oldest);
  }
  return analysis;
}

function withRedactedText(analysis: SqlAnalysis): SqlTextAnalysis {
  return Object.freeze({ ...analysis, text: analysis.redacted });
}
