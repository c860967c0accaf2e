/**
 * Tiny predicates over tokens, shared by the analysis passes.
 *
 * @module
 */
import type { Token } from "./lexer.ts";

/**
 * Whether `token` is the unquoted word `value` (lower case).
 *
 * @example
 * ```ts
 * isWord(tokenize("SELECT")[0], "select"); // true
 * ```
 */
export function isWord(token: Token | undefined, value: string): boolean {
  return token !== undefined && token.kind === "word" && token.value === value;
}

/**
 * Whether `token` is the punctuation `text`.
 *
 * @example
 * ```ts
 * isPunctuation(tokenize("(")[0], "("); // true
 * ```
 */
export function isPunctuation(token: Token | undefined, text: string): boolean {
  return token !== undefined && token.kind === "punctuation" && token.text === text;
}
