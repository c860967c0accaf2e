/**
 * Splitting text into statements.
 *
 * @module
 */
import type { Token } from "./lexer.ts";

/**
 * A statement as a half-open range of token indexes.
 *
 * @example
 * ```ts
 * const [first]: StatementRange[] = splitStatements(tokenize("select 1; select 2"));
 * first; // { start: 0, end: 2 }
 * ```
 */
export interface StatementRange {
  readonly start: number;
  readonly end: number;
}

/**
 * The statements of a token list (comments already removed), split at `;`. Empty statements are
 * dropped. Semicolons inside a SQL-standard function body (`BEGIN ATOMIC … END`) do not split,
 * since the server reads that body as part of its `CREATE FUNCTION`.
 *
 * @example
 * ```ts
 * splitStatements(tokenize("select 1; ; select 2")); // [{ start: 0, end: 2 }, { start: 4, end: 6 }]
 * ```
 */
export function splitStatements(tokens: readonly Token[]): StatementRange[] {
  const statements: StatementRange[] = [];
  let start = 0;
  let atomicDepth = 0;
  let caseDepth = 0;
  for (let index = 0; index < tokens.length; index += 1) {
    const token = tokens[index]!;
    if (token.kind === "word") {
      const before = tokens[index - 1];
      if (token.value === "atomic" && before?.kind === "word" && before.value === "begin") {
        atomicDepth += 1;
      } else if (atomicDepth > 0 && token.value === "case") {
        caseDepth += 1;
      } else if (atomicDepth > 0 && token.value === "end") {
        if (caseDepth > 0) caseDepth -= 1;
        else atomicDepth -= 1;
      }
    } else if (token.kind === "punctuation" && token.text === ";" && atomicDepth === 0) {
      if (index > start) statements.push({ start, end: index });
      start = index + 1;
    }
  }
  if (tokens.length > start) statements.push({ start, end: tokens.length });
  return statements;
}
