/**
 * Lane hints written in the SQL itself.
 *
 * @module
 */
import type { Token } from "./lexer.ts";

const LANE_HINT = /pgpilot:lane=([A-Za-z0-9_.-]+)/;

/**
 * The lane named by a `/* pgpilot:lane=NAME *\/` (or `-- pgpilot:lane=NAME`) comment, the first
 * one if there are several. Only comments count: the same characters inside a string literal are
 * data, not a hint.
 *
 * @example
 * ```ts
 * laneHintOf(tokenize("/* pgpilot:lane=analytics *\/ select count(*) from events")); // "analytics"
 * ```
 */
export function laneHintOf(tokens: readonly Token[]): string | undefined {
  for (const token of tokens) {
    if (token.kind !== "comment") continue;
    const found = LANE_HINT.exec(token.text);
    if (found !== null) return found[1];
  }
  return undefined;
}
