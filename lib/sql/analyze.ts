/**
 * `analyzeSql`: everything pgpilot needs to know about a query's text, computed once per distinct
 * text (see `cache.ts`).
 *
 * @module
 */
import { matchBrackets } from "./brackets.ts";
import { fnv1a64 } from "./fingerprint.ts";
import { laneHintOf } from "./lane-hint.ts";
import { tokenize } from "./lexer.ts";
import { normalizeTokens } from "./normalize.ts";
import { redactTokens } from "./redact.ts";
import { hasRowLock } from "./row-locks.ts";
import { callsSideEffectFunction } from "./side-effects.ts";
import { type MainStatement, statementShape } from "./statement.ts";
import { splitStatements } from "./statements.ts";
import { findTableReferences, type TableClause, type TableReference } from "./tables.ts";
import { commonTableNames } from "./with-clause.ts";

/**
 * What pgpilot knows about a query's text.
 *
 * @example
 * ```ts
 * const analysis: SqlAnalysis = analyzeSql("select * from users where id = $1");
 * analysis.command; // "SELECT"
 * ```
 */
export interface SqlAnalysis {
  /**
   * Upper-case first key word of the first statement (`SELECT`, `INSERT`, `MERGE`, `EXPLAIN`,
   * `BEGIN`, `CREATE`, …); a `WITH` query reports its main statement's command. `"UNKNOWN"` for
   * empty text or a first word that is not a PostgreSQL command.
   */
  readonly command: string;
  /**
   * The main table of the first statement, as written (schema-qualified if it was, quotes removed):
   * the first FROM item of a SELECT, the target of INSERT/UPDATE/DELETE/MERGE, the table of COPY,
   * TRUNCATE, LOCK and CREATE/ALTER/DROP TABLE. Undefined when there is none or it is not a table
   * (a subquery, a function, a common table expression).
   */
  readonly collection: string | undefined;
  /** Every table named after FROM, JOIN, INTO, UPDATE, TABLE and USING, in text order, once each. */
  readonly tables: readonly string[];
  /**
   * True only when every statement only reads: SELECT, VALUES, SHOW, TABLE, EXPLAIN without
   * ANALYZE (or of a read-only statement), and WITH whose parts all read; without row locks,
   * SELECT INTO, or calls of functions with side effects (`nextval`, advisory locks, …).
   */
  readonly readOnly: boolean;
  /** 16 hex digits: FNV-1a 64 of `normalized`. */
  readonly fingerprint: string;
  /** Literals and `$n` as `?`, lists collapsed, comments dropped, words lower-cased. */
  readonly normalized: string;
  /** The text with literals as `?`, comments dropped, whitespace collapsed; names and `$n` kept. */
  readonly redacted: string;
  /** The lane named by a `pgpilot:lane=NAME` comment. */
  readonly laneHint: string | undefined;
}

// Which table position is a command's main table.
const COLLECTION_CLAUSES: Readonly<Record<string, readonly TableClause[]>> = {
  SELECT: ["from"],
  DELETE: ["from"],
  INSERT: ["into"],
  MERGE: ["into"],
  UPDATE: ["update"],
  COPY: ["command"],
  TRUNCATE: ["command", "table"],
  LOCK: ["command", "table"],
  CREATE: ["table"],
  ALTER: ["table"],
  DROP: ["table"],
  TABLE: ["table"],
};

/**
 * Analyzes SQL text. Pure and total: any string, however malformed, gets an analysis. Runs once per
 * distinct text; callers on the hot path use `analyzeTemplate` / `analyzeUnsafe`, which cache.
 *
 * @example
 * ```ts
 * const analysis = analyzeSql(`
 *   WITH moved AS (DELETE FROM queue WHERE id = 7 RETURNING *)
 *   INSERT INTO archive SELECT * FROM moved`);
 * analysis.command; // "INSERT"
 * analysis.collection; // "archive"
 * analysis.tables; // ["queue", "archive"]
 * analysis.readOnly; // false
 * analysis.normalized; // "with moved as (delete from queue where id = ? returning *) insert into archive select * from moved"
 * ```
 */
export function analyzeSql(text: string): SqlAnalysis {
  const all = tokenize(text);
  const tokens = all.filter((token) => token.kind !== "comment");
  const match = matchBrackets(tokens);
  const statements = splitStatements(tokens);

  let command = "UNKNOWN";
  let collection: string | undefined;
  let readOnly = statements.length > 0;
  const tables: string[] = [];
  const seen = new Set<string>();

  for (let position = 0; position < statements.length; position += 1) {
    const { start, end } = statements[position]!;
    const shape = statementShape(tokens, match, start, end);
    const references = findTableReferences(tokens, start, end);
    const commonTables = commonTableNames(tokens, match, start, end);
    const isCommonTable = (reference: TableReference): boolean =>
      !reference.qualified && reference.key !== undefined && commonTables.has(reference.key);

    readOnly &&= shape.readOnly && !hasRowLock(tokens, start, end) && !callsSideEffectFunction(tokens, start, end);
    if (position === 0) {
      command = shape.command;
      const main = mainTable(shape.main, references);
      collection = main === undefined || isCommonTable(main) ? undefined : main.name;
    }
    for (const reference of references) {
      if (reference.key === undefined || reference.name === undefined || isCommonTable(reference)) continue;
      if (seen.has(reference.key)) continue;
      seen.add(reference.key);
      tables.push(reference.name);
    }
  }

  const normalized = normalizeTokens(tokens, match);
  return Object.freeze({
    command,
    collection,
    tables: Object.freeze(tables),
    readOnly,
    fingerprint: fnv1a64(normalized),
    normalized,
    redacted: redactTokens(tokens),
    laneHint: laneHintOf(all),
  });
}

/** The first table position of the main statement, at its depth, of the kind its command uses. */
function mainTable(main: MainStatement | undefined, references: readonly TableReference[]): TableReference | undefined {
  if (main === undefined) return undefined;
  const clauses = COLLECTION_CLAUSES[main.command];
  if (clauses === undefined) return undefined;
  for (const reference of references) {
    if (reference.index >= main.index && reference.depth === main.depth && clauses.includes(reference.clause)) {
      return reference;
    }
  }
  return undefined;
}
