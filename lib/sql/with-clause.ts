/**
 * Reading a `WITH` clause: its common table expressions and where the main statement starts.
 *
 * @module
 */
import type { Token } from "./lexer.ts";
import { RESERVED_WORDS } from "./keywords.ts";
import { isPunctuation, isWord } from "./token-predicates.ts";

/**
 * One `name [(columns)] AS [[NOT] MATERIALIZED] ( body )` of a `WITH` clause.
 *
 * @example
 * ```ts
 * const tokens = tokenize("with recent as (select 1) select * from recent");
 * parseWithClause(tokens, matchBrackets(tokens), 0, tokens.length).expressions[0]!.key; // "recent"
 * ```
 */
export interface CommonTableExpression {
  /** The name as written (quotes removed). */
  readonly name: string;
  /** The name as PostgreSQL resolves it: folded to lower case unless it was quoted. */
  readonly key: string;
  /** First token of the body, after its `(`. */
  readonly bodyStart: number;
  /** The body's closing `)` (exclusive end of the body). */
  readonly bodyEnd: number;
}

/**
 * A parsed `WITH` clause.
 *
 * @example
 * ```ts
 * const tokens = tokenize("with a as (select 1) select * from a");
 * parseWithClause(tokens, matchBrackets(tokens), 0, tokens.length).next; // 7, the main "select"
 * ```
 */
export interface WithClause {
  readonly expressions: readonly CommonTableExpression[];
  /** Index of the first token of the main statement (or where reading stopped). */
  readonly next: number;
}

// Words that start the main statement after the last common table expression.
const MAIN_STATEMENT_WORDS: ReadonlySet<string> = new Set([
  "select", "insert", "update", "delete", "merge", "values", "table", "with",
]);

/**
 * Reads the `WITH` clause whose `WITH` key word is at `withIndex`. Text that does not have the shape
 * of common table expressions (`WITH ORDINALITY`, `WITH (fillfactor = 70)`, …) yields none, with
 * `next` just after what could be read.
 *
 * @example
 * ```ts
 * const tokens = tokenize("with a as (delete from t returning *) select * from a");
 * const clause = parseWithClause(tokens, matchBrackets(tokens), 0, tokens.length);
 * clause.expressions.length; // 1
 * ```
 */
export function parseWithClause(
  tokens: readonly Token[],
  match: Int32Array,
  withIndex: number,
  end: number,
): WithClause {
  const expressions: CommonTableExpression[] = [];
  let index = withIndex + 1;
  if (isWord(tokens[index], "recursive")) index += 1;
  for (;;) {
    const expression = readExpression(tokens, match, index, end);
    if (expression === undefined) break;
    expressions.push(expression);
    index = expression.bodyEnd + 1;
    // Skip SEARCH … / CYCLE … clauses up to the next expression or the main statement. Their
    // column lists contain commas too, so a comma only continues the list if an expression follows.
    let continued = false;
    while (index < end) {
      const token = tokens[index]!;
      if (token.kind === "punctuation" && token.text === ",") {
        if (readExpression(tokens, match, index + 1, end) !== undefined) {
          index += 1;
          continued = true;
          break;
        }
      } else if (
        (token.kind === "word" && MAIN_STATEMENT_WORDS.has(token.value)) ||
        (token.kind === "punctuation" && (token.text === "(" || token.text === ")"))
      ) {
        // `)` closes the group the clause is in: nothing more of it follows.
        break;
      }
      index += 1;
    }
    if (!continued) break;
  }
  return { expressions, next: Math.min(index, end) };
}

function readExpression(
  tokens: readonly Token[],
  match: Int32Array,
  start: number,
  end: number,
): CommonTableExpression | undefined {
  const nameToken = tokens[start];
  if (nameToken === undefined || start >= end) return undefined;
  if (!(nameToken.kind === "quoted" || (nameToken.kind === "word" && !RESERVED_WORDS.has(nameToken.value)))) {
    return undefined;
  }
  let index = start + 1;
  if (isPunctuation(tokens[index], "(")) index = match[index]! + 1;
  if (!isWord(tokens[index], "as")) return undefined;
  index += 1;
  if (isWord(tokens[index], "not")) index += 1;
  if (isWord(tokens[index], "materialized")) index += 1;
  if (!isPunctuation(tokens[index], "(") || index >= end) return undefined;
  return {
    name: nameToken.kind === "quoted" ? nameToken.value : nameToken.text,
    key: nameToken.value,
    bodyStart: index + 1,
    bodyEnd: Math.min(match[index]!, end),
  };
}

/**
 * The keys of every common table expression defined in `tokens[start, end)`, nested `WITH`s
 * included: a FROM naming one of them names no table.
 *
 * @example
 * ```ts
 * const tokens = tokenize("with recent as (select 1) select * from recent");
 * commonTableNames(tokens, matchBrackets(tokens), 0, tokens.length); // Set { "recent" }
 * ```
 */
export function commonTableNames(
  tokens: readonly Token[],
  match: Int32Array,
  start: number,
  end: number,
): Set<string> {
  const names = new Set<string>();
  for (let index = start; index < end; index += 1) {
    if (!isWord(tokens[index], "with")) continue;
    for (const expression of parseWithClause(tokens, match, index, end).expressions) names.add(expression.key);
  }
  return names;
}
