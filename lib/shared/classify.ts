/**
 * Failure categories: the one place that decides what an error says about the
 * database's health. The breaker counts every category but `client`; retry looks at
 * `connection` and `transaction`; metrics use the category as `error.type` when there is no
 * SQLSTATE.
 *
 * @module
 */
import { isPilotError } from "./errors.ts";

/** What kind of failure an error is. */
export type FailureCategory = "connection" | "timeout" | "transaction" | "resource" | "client";

/** Every category, in a stable order (for metrics and stats). */
export const FAILURE_CATEGORIES: readonly FailureCategory[] = [
  "connection",
  "timeout",
  "transaction",
  "resource",
  "client",
];

const CONNECTION_CODES = new Set([
  // postgres.js
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  // sockets (Node, Bun and Deno use the same names)
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "ECONNABORTED",
  // SQLSTATE: shutdown, crash, cannot connect now, too many connections
  "57P01",
  "57P02",
  "57P03",
  "53300",
]);

const TIMEOUT_CODES = new Set(["57014", "55P03", "DEADLINE_EXCEEDED"]);

/**
 * Cloudflare Workers: `connect()` (cloudflare:sockets) rejects with a plain Error without a
 * `code`; postgres.js passes it on as is. Matched by message, only when there is no code.
 */
const WORKERS_CONNECTION_MESSAGE = /^proxy request failed, cannot connect to the specified address/;

/**
 * Classify an error into a failure category. Pure: looks only at `code` (SQLSTATE,
 * postgres.js code, socket errno name or pgpilot code) of the error or, when an ORM or the
 * application wrapped it, of the first error in its `cause` chain that has one — and at the
 * message of a code-less Workers socket error.
 *
 * Anything unrecognised is `client`: counting an unknown error against the database's
 * health would let an application bug open the circuit.
 *
 * @example
 * ```ts
 * classify({ code: "40001" });            // "transaction"
 * classify({ code: "ECONNREFUSED" });     // "connection"
 * classify(new TypeError("x"));           // "client"
 * ```
 */
export function classify(error: unknown): FailureCategory {
  const failure = underlyingError(error);
  if (isUnreachable(failure)) return "connection";
  const code = ownCode(failure);
  if (code === undefined) {
    const message = (failure as { message?: unknown } | null)?.message;
    return typeof message === "string" && WORKERS_CONNECTION_MESSAGE.test(message) ? "connection" : "client";
  }
  if (CONNECTION_CODES.has(code)) return "connection";
  if (TIMEOUT_CODES.has(code)) return "timeout";
  if (isPilotError(failure)) return "client";
  if (code.length !== 5) return "client";
  switch (code.slice(0, 2)) {
    case "08": // connection exception
    case "28": // invalid authorization: the server cannot be used as configured
      return "connection";
    case "40": // 40001 serialization, 40P01 deadlock, 40002/40003 commit-time failures
    case "25": // invalid transaction state
      return "transaction";
    case "53": // insufficient resources (53300 handled above)
    case "58": // system error (I/O)
    case "XX": // internal error, data corrupted
    case "F0": // configuration file error
      return "resource";
    default:
      return "client";
  }
}

const UNREACHABLE = Symbol.for("pgpilot.unreachable");

/**
 * Mark a server error that came while a connection was being established, before any statement
 * ran on it: `database "nope" does not exist` (3D000), a missing role, a rejected password, too
 * many connections. Such an error says the lane cannot be used as configured, whatever its
 * SQLSTATE class says of a statement (a `DROP DATABASE nope` gets the same 3D000 and is the
 * caller's mistake), so `classify()` calls it a `connection` failure. Only errors the server
 * sent (they have a `severity`) are marked; the mark is a non-enumerable symbol, so the error
 * looks the same to its caller. Returns the error.
 *
 * @example
 * ```ts
 * classify(markUnreachable(Object.assign(new Error("database \"nope\" does not exist"), { code: "3D000", severity: "FATAL" })));
 * // "connection"
 * ```
 */
export function markUnreachable<E>(error: E): E {
  if (
    typeof error === "object" && error !== null && typeof (error as { severity?: unknown }).severity === "string" &&
    isSqlState(errorCode(error)) && Object.isExtensible(error)
  ) {
    Object.defineProperty(error, UNREACHABLE, { value: true, enumerable: false, configurable: true });
  }
  return error;
}

/**
 * True for an error `markUnreachable()` marked.
 *
 * @example
 * ```ts
 * isUnreachable(new Error("x")); // false
 * ```
 */
export function isUnreachable(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[UNREACHABLE] === true;
}

/**
 * The `code` of an error as a string, or undefined. postgres.js puts the SQLSTATE in `code`;
 * socket errors carry the errno name there too. Looks through the `cause` chain (an ORM's
 * wrapper, an `AggregateError`) when the error itself has none.
 *
 * @example
 * ```ts
 * errorCode({ code: "23505" }); // "23505"
 * errorCode(new Error("query failed", { cause: { code: "40001" } })); // "40001"
 * ```
 */
export function errorCode(error: unknown): string | undefined {
  return ownCode(underlyingError(error));
}

/** How deep a `cause` chain is followed (a cycle or a pathological chain stops here). */
const MAX_CAUSES = 8;

/**
 * The error that says what failed: `error` itself when it has a string `code`, else the first
 * error with one in its `cause` chain (or among an `AggregateError`'s errors); `error` when
 * none has a code. One failure wrapped by an ORM (drizzle's `DrizzleQueryError`) is the same
 * failure: compare this, not the wrapper, to count it once.
 *
 * @example
 * ```ts
 * const pg = Object.assign(new Error("deadlock"), { code: "40P01" });
 * underlyingError(new Error("Failed query", { cause: pg })) === pg; // true
 * ```
 */
export function underlyingError(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < MAX_CAUSES; depth++) {
    if (typeof current !== "object" || current === null) return error;
    if (ownCode(current) !== undefined) return current;
    const errors = (current as { errors?: unknown }).errors;
    if (Array.isArray(errors) && current instanceof AggregateError) {
      const coded = errors.find((inner) => ownCode(underlyingError(inner)) !== undefined);
      if (coded !== undefined) return underlyingError(coded);
    }
    const cause = (current as { cause?: unknown }).cause;
    if (cause === undefined || cause === current) return error;
    current = cause;
  }
  return error;
}

function ownCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/**
 * True when the error is a SQLSTATE from the server (five characters, digits and capitals).
 *
 * @example
 * ```ts
 * isSqlState("23505"); // true
 * isSqlState("ECONNRESET"); // false
 * ```
 */
export function isSqlState(code: string | undefined): code is string {
  return code !== undefined && code.length === 5 && /^[0-9A-Z]{5}$/.test(code);
}
