/**
 * Redaction of literals, for query text that is recorded (span attributes, slow-query logs).
 *
 * @module
 */
import type { Token } from "./lexer.ts";

/**
 * Rebuilds the text from its tokens with every string, number and dollar-quoted literal replaced by
 * `?`, comments dropped and each run of whitespace (or comment) turned into one space. Names,
 * key words (as written) and `$n` parameters are kept, so the result still reads as the query.
 * Comments go too: they may carry values (`/* user 42 *\/`), and sqlcommenter tags are opt-in.
 *
 * @example
 * ```ts
 * redactTokens(tokenize("SELECT * FROM users WHERE email = 'a@b.c' -- login"));
 * // "SELECT * FROM users WHERE email = ?"
 * ```
 */
export function redactTokens(tokens: readonly Token[]): string {
  let out = "";
  let previousEnd = -1;
  for (const token of tokens) {
    if (token.kind === "comment") continue;
    const piece = token.kind === "string" || token.kind === "number" ? "?" : token.text;
    // Tokens that touched in the source still touch: `count(*)`, `a.b`, `x::int`.
    out += previousEnd === -1 || previousEnd === token.start ? piece : " " + piece;
    previousEnd = token.end;
  }
  return out;
}
