/**
 * The shape of one statement: its command, whether its structure is read-only, and where its main
 * statement is (through `WITH …` and `EXPLAIN …`).
 *
 * @module
 */
import type { Token } from "./lexer.ts";
import { COMMAND_WORDS } from "./keywords.ts";
import { isPunctuation, isWord } from "./token-predicates.ts";
import { parseWithClause } from "./with-clause.ts";

/**
 * Where the statement that does the work starts: `DELETE` in
 * `WITH x AS (…) DELETE FROM t`, `UPDATE` in `EXPLAIN ANALYZE UPDATE t …`.
 *
 * @example
 * ```ts
 * const tokens = tokenize("explain analyze delete from t");
 * statementShape(tokens, matchBrackets(tokens), 0, tokens.length).main?.command; // "DELETE"
 * ```
 */
export interface MainStatement {
  /** Index of its first key word. */
  readonly index: number;
  /** Its bracket depth: `(SELECT …) UNION (SELECT …)` starts at depth 1. */
  readonly depth: number;
  readonly command: string;
}

/**
 * What `statementShape` finds.
 *
 * @example
 * ```ts
 * const tokens = tokenize("with d as (delete from t returning *) select * from d");
 * const shape = statementShape(tokens, matchBrackets(tokens), 0, tokens.length);
 * shape.command; // "SELECT"
 * shape.readOnly; // false
 * ```
 */
export interface StatementShape {
  /** Upper-case command; WITH resolved to its main statement; "UNKNOWN" if not a known command. */
  readonly command: string;
  /**
   * Read-only as far as structure goes (command, common table expressions, EXPLAIN ANALYZE,
   * SELECT INTO). Row locks and side-effect functions are checked separately.
   */
  readonly readOnly: boolean;
  readonly main: MainStatement | undefined;
}

const UNKNOWN: StatementShape = { command: "UNKNOWN", readOnly: false, main: undefined };

// Nesting (WITH inside a common table expression inside WITH …) deeper than any real query; beyond
// it the text is treated as an unknown write rather than recursing without bound.
const MAX_NESTING = 32;

const READ_ONLY_OPTION_VALUES: ReadonlySet<string> = new Set(["false", "off", "0", "no"]);

/**
 * The shape of the statement `tokens[start, end)` (comments removed, no `;`).
 *
 * @example
 * ```ts
 * const tokens = tokenize("select * from users for update");
 * statementShape(tokens, matchBrackets(tokens), 0, tokens.length).command; // "SELECT"
 * ```
 */
export function statementShape(
  tokens: readonly Token[],
  match: Int32Array,
  start: number,
  end: number,
  depth = 0,
  nesting = 0,
): StatementShape {
  if (nesting > MAX_NESTING) return UNKNOWN;
  let index = start;
  let level = depth;
  while (index < end && isPunctuation(tokens[index], "(")) {
    index += 1;
    level += 1;
  }
  const first = tokens[index];
  if (first === undefined || index >= end || first.kind !== "word") return UNKNOWN;
  const word = first.value;

  if (word === "with") {
    const clause = parseWithClause(tokens, match, index, end);
    const main = statementShape(tokens, match, clause.next, end, level, nesting + 1);
    // A data-modifying statement in any common table expression runs, whatever the main one is.
    const bodiesReadOnly = clause.expressions.every((expression) =>
      statementShape(tokens, match, expression.bodyStart, expression.bodyEnd, level + 1, nesting + 1).readOnly
    );
    return { command: main.command, readOnly: bodiesReadOnly && main.readOnly, main: main.main };
  }

  if (word === "explain") {
    let next = index + 1;
    let analyze = false;
    if (isPunctuation(tokens[next], "(")) {
      analyze = explainOptionsAnalyze(tokens, next + 1, Math.min(match[next]!, end));
      next = match[next]! + 1;
    } else {
      while (next < end && (isWord(tokens[next], "analyze") || isWord(tokens[next], "analyse") || isWord(tokens[next], "verbose"))) {
        if (!isWord(tokens[next], "verbose")) analyze = true;
        next += 1;
      }
    }
    const inner = statementShape(tokens, match, next, end, level, nesting + 1);
    // Plain EXPLAIN only plans; EXPLAIN ANALYZE runs the statement, so it writes if that does.
    return { command: "EXPLAIN", readOnly: !analyze || inner.readOnly, main: inner.main };
  }

  const command = COMMAND_WORDS.has(word) ? word.toUpperCase() : "UNKNOWN";
  const main: MainStatement = { index, depth: level, command };
  switch (word) {
    case "select":
      // SELECT … INTO creates a table.
      return { command, readOnly: !containsWord(tokens, index, end, "into"), main };
    case "values":
    case "table":
    case "show":
      return { command, readOnly: true, main };
    default:
      return { command, readOnly: false, main };
  }
}

/** Whether `EXPLAIN (…)` options turn ANALYZE on: `ANALYZE`, `ANALYZE true`, but not `ANALYZE off`. */
function explainOptionsAnalyze(tokens: readonly Token[], start: number, end: number): boolean {
  let analyze = false;
  let optionStart = true;
  for (let index = start; index < end; index += 1) {
    const token = tokens[index]!;
    if (isPunctuation(token, ",")) {
      optionStart = true;
      continue;
    }
    if (optionStart && (isWord(token, "analyze") || isWord(token, "analyse"))) {
      const value = tokens[index + 1];
      const explicit = index + 1 < end && value !== undefined && !isPunctuation(value, ",");
      analyze = !(explicit && READ_ONLY_OPTION_VALUES.has(value.kind === "string" ? value.text.slice(1, -1).toLowerCase() : value.value));
    }
    optionStart = false;
  }
  return analyze;
}

function containsWord(tokens: readonly Token[], start: number, end: number, word: string): boolean {
  for (let index = start; index < end; index += 1) if (isWord(tokens[index], word)) return true;
  return false;
}
