/**
 * The fixed algorithm: the limit never moves (a plain bounded pool with a queue).
 *
 * @module
 */
import type { LimitAlgorithm } from "./algorithm.ts";

/**
 * A limit that stays where it starts.
 *
 * @example
 * ```ts
 * const algorithm = fixedLimit();
 * algorithm.next(10, sample); // 10
 * ```
 */
export function fixedLimit(): LimitAlgorithm {
  return { name: "fixed", next: (limit) => limit };
}
