/**
 * SQL analysis: command, tables, read-only, fingerprint, redaction and lane hints of PostgreSQL
 * text. Pure functions, no dependencies.
 *
 * @example
 * ```ts
 * import { analyzeUnsafe } from "./lib/sql/mod.ts";
 * analyzeUnsafe("select * from orders for update").readOnly; // false
 * ```
 *
 * @module
 */
export { analyzeSql, type SqlAnalysis } from "./analyze.ts";
export {
  analyzeTemplate,
  analyzeUnsafe,
  MAX_CACHED_TEXT_LENGTH,
  type SqlTextAnalysis,
  UNSAFE_CACHE_LIMIT,
} from "./cache.ts";
export { fnv1a64 } from "./fingerprint.ts";
export { type Token, type TokenKind, tokenize } from "./lexer.ts";
