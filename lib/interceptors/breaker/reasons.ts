/**
 * How the breaker reads the errors it is given: what to quote of the failure that opened a
 * circuit, and whether an abort was a deadline.
 *
 * @module
 */
import { isPilotError } from "../../shared/errors.ts";

/**
 * ` ("database \"nope\" does not exist", 3D000)` for a reason, or "" without a cause.
 *
 * @example
 * ```ts
 * describeCause({ message: "password authentication failed", code: "28P01" }); // ' ("password authentication failed", 28P01)'
 * ```
 */
export function describeCause(cause: unknown): string {
  if (typeof cause !== "object" || cause === null) return "";
  const message = (cause as { message?: unknown }).message;
  const code = (cause as { code?: unknown }).code;
  const text = typeof message === "string" && message !== "" ? JSON.stringify(message.slice(0, 200)) : undefined;
  if (text === undefined) return typeof code === "string" ? ` (${code})` : "";
  return typeof code === "string" && !message!.toString().includes(code) ? ` (${text}, ${code})` : ` (${text})`;
}

/**
 * A deadline's abort reason (a caller's cancel is a plain 57014, which must not count).
 *
 * @example
 * ```ts
 * isDeadline(new DeadlineExceededError(500)); // true
 * ```
 */
export function isDeadline(reason: unknown): boolean {
  return isPilotError(reason) && reason.code === "DEADLINE_EXCEEDED";
}
