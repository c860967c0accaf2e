/**
 * Row-locking clauses.
 *
 * @module
 */
import type { Token } from "./lexer.ts";
import { isWord } from "./token-predicates.ts";

/**
 * Whether `tokens[start, end)` contains `FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE` or
 * `FOR KEY SHARE`. A SELECT that locks rows is a write: a replica cannot take the locks, and the
 * caller relies on them being held in its transaction.
 *
 * @example
 * ```ts
 * const tokens = tokenize("select * from jobs for update skip locked");
 * hasRowLock(tokens, 0, tokens.length); // true
 * ```
 */
export function hasRowLock(tokens: readonly Token[], start: number, end: number): boolean {
  for (let index = start; index + 1 < end; index += 1) {
    if (!isWord(tokens[index], "for")) continue;
    const next = tokens[index + 1];
    if (isWord(next, "update") || isWord(next, "share")) return true;
    if (index + 2 < end && isWord(next, "key") && isWord(tokens[index + 2], "share")) return true;
    if (
      index + 3 < end && isWord(next, "no") && isWord(tokens[index + 2], "key") && isWord(tokens[index + 3], "update")
    ) return true;
  }
  return false;
}
