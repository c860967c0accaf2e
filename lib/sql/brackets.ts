/**
 * Bracket matching over a token list, computed once so that every later pass can jump over a
 * parenthesized group in one step.
 *
 * @module
 */
import type { Token } from "./lexer.ts";

/**
 * For each `(` or `[` token, the index of its matching closer; `tokens.length` when it is never
 * closed (the analyzer reads unbalanced text rather than rejecting it). Other entries are -1.
 *
 * @example
 * ```ts
 * const tokens = tokenize("f(a, (b))");
 * matchBrackets(tokens)[1]; // 7, the last ")"
 * ```
 */
export function matchBrackets(tokens: readonly Token[]): Int32Array {
  const match = new Int32Array(tokens.length).fill(-1);
  const open: number[] = [];
  for (let index = 0; index < tokens.length; index += 1) {
    const token = tokens[index]!;
    if (token.kind !== "punctuation") continue;
    const text = token.text;
    if (text === "(" || text === "[") {
      match[index] = tokens.length;
      open.push(index);
    } else if (text === ")" || text === "]") {
      const top = open[open.length - 1];
      // A closer of the wrong kind is left unmatched instead of closing an outer group.
      if (top !== undefined && tokens[top]!.text === (text === ")" ? "(" : "[")) {
        match[top] = index;
        open.pop();
      }
    }
  }
  return match;
}
