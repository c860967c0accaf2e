/**
 * The tables an operation touches, in the form read-your-writes compares: lower-cased, without
 * schema. Computed once per analysis object (analyses are cached per call site, so this is too).
 *
 * Matching by bare name over-matches (`audit.events` and `public.events` are one key), which only
 * sends a few more reads to the primary; it never lets a read miss its own write.
 *
 * @module
 */
import type { SqlAnalysis } from "../../sql/analyze.ts";

/** What read-your-writes needs to know about one statement. */
export interface TouchedTables {
  /** Table keys: the last name part, lower-cased. */
  readonly keys: readonly string[];
  /**
   * True when a table is given by a parameter (`sql(name)` in a tagged template), so the analysis
   * cannot name it: such a read must be treated as touching any recently written table.
   */
  readonly dynamic: boolean;
  /**
   * True for a write whose targets are unknown (a dynamic table, `CALL`, `DO`): it must be treated
   * as having written every table.
   */
  readonly writesUnknown: boolean;
}

// Statements that change table data when they are not read-only.
const DATA_WRITES = new Set(["INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "TRUNCATE"]);
// Statements that may write anything, wherever they appear.
const OPAQUE_WRITES = new Set(["CALL", "DO", "EXECUTE"]);
// A parameter where a table name goes (normalized text writes parameters as `?`).
const TABLE_PARAMETER = /\b(?:from|join|into|update|using|table)\s+\?/;

const cache = new WeakMap<SqlAnalysis, TouchedTables>();

/**
 * The tables a statement touches (cached per analysis object).
 *
 * @example
 * ```ts
 * touchedTables(analyzeSql('select * from public."Orders" o join items i on true')).keys; // ["orders", "items"]
 * touchedTables(analyzeSql("insert into $1 values ($2)")).writesUnknown; // true
 * ```
 */
export function touchedTables(analysis: SqlAnalysis): TouchedTables {
  let touched = cache.get(analysis);
  if (touched === undefined) {
    const keys = [...new Set(analysis.tables.map(tableKey))];
    const dynamic = TABLE_PARAMETER.test(analysis.normalized);
    const writesUnknown = !analysis.readOnly &&
      (OPAQUE_WRITES.has(analysis.command) || (DATA_WRITES.has(analysis.command) && (keys.length === 0 || dynamic)));
    touched = Object.freeze({ keys: Object.freeze(keys), dynamic, writesUnknown });
    cache.set(analysis, touched);
  }
  return touched;
}

/**
 * The comparison key of a table name as the analysis reports it (quotes already removed).
 *
 * @example
 * ```ts
 * tableKey("public.Orders"); // "orders"
 * ```
 */
export function tableKey(name: string): string {
  const dot = name.lastIndexOf(".");
  return (dot === -1 ? name : name.slice(dot + 1)).toLowerCase();
}
