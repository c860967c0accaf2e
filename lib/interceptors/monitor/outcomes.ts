/**
 * How `monitor()` reads an outcome: a breaker rejection, an error that counts toward a failing
 * streak, a short description for health reasons, the rows of a result.
 *
 * @module
 */
import { errorCode } from "../../shared/classify.ts";
import { isPilotError } from "../../shared/errors.ts";

/**
 * A call an open circuit turned away (any copy of pgpilot).
 *
 * @example
 * ```ts
 * isRejection(new CircuitOpenError("primary", "connection", 1000)); // true
 * ```
 */
export function isRejection(error: unknown): boolean {
  return isPilotError(error) && error.code === "CIRCUIT_OPEN";
}

/**
 * Errors about one statement or its data (cardinality 21, data 22, constraints 23, syntax and
 * undefined objects 42 — but not 42501, no permission —, WITH CHECK 44, PL/pgSQL P0) say
 * nothing about the lane: they neither make nor break a failing streak.
 *
 * @example
 * ```ts
 * streakCounts({ code: "3D000" }); // true
 * streakCounts({ code: "42601" }); // false (syntax error)
 * ```
 */
export function streakCounts(error: unknown): boolean {
  const code = errorCode(error);
  if (code === undefined || code.length !== 5 || code === "42501") return true;
  return !STATEMENT_CLASSES.has(code.slice(0, 2));
}

const STATEMENT_CLASSES = new Set(["21", "22", "23", "42", "44", "P0"]);

/**
 * `"message" (code)`, at most 200 characters of message.
 *
 * @example
 * ```ts
 * describeError({ message: "database \"nope\" does not exist", code: "3D000" }); // "\"database \\\"nope\\\" does not exist\" (3D000)"
 * ```
 */
export function describeError(error: unknown): string {
  const message = typeof error === "object" && error !== null ? (error as { message?: unknown }).message : error;
  const code = errorCode(error);
  const text = JSON.stringify(String(message ?? "").slice(0, 200));
  return code === undefined ? text : `${text} (${code})`;
}

/**
 * Rows returned or affected: postgres.js puts `count` on its result arrays.
 *
 * @example
 * ```ts
 * rowsOf(Object.assign([], { count: 3 })); // 3
 * ```
 */
export function rowsOf(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  const count = (value as { count?: unknown }).count;
  return typeof count === "number" && count > 0 ? count : 0;
}
