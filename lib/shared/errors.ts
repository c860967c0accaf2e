/**
 * pgpilot's own errors. postgres.js errors (`PostgresError` and its connection errors) pass
 * through untouched; these are the rejections pgpilot itself makes. Each has a stable `code`
 * so callers can branch without `instanceof` across package copies (cockatiel's convention).
 *
 * @module
 */
import type { BaseIssue } from "valibot";
import { describeIssue } from "./config-issues.ts";

/** The stable codes of pgpilot's errors. */
export type PilotErrorCode =
  | "CONFIG_INVALID"
  | "CIRCUIT_OPEN"
  | "POOL_TIMEOUT"
  | "POOL_SATURATED"
  | "DEADLINE_EXCEEDED"
  | "NEXT_CALLED_TWICE"
  | "OPERATION_ABORTED"
  | "UNKNOWN_LANE"
  | "CLOSED";

const PILOT_ERROR = Symbol.for("pgpilot.error");

/**
 * Base class of every error pgpilot raises itself.
 *
 * @example
 * ```ts
 * try { await sql`select 1`; } catch (error) {
 *   if (isPilotError(error)) console.log(error.code);
 * }
 * ```
 */
export class PilotError extends Error {
  /** Stable machine-readable code. */
  readonly code: PilotErrorCode;

  constructor(code: PilotErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PilotError";
    this.code = code;
  }
}

// A marker on the prototype, found through Symbol.for, so two copies of pgpilot agree.
Object.defineProperty(PilotError.prototype, PILOT_ERROR, { value: true });

/**
 * True for any pgpilot error, even from another copy of the package.
 *
 * @example
 * ```ts
 * if (isPilotError(error) && error.code === "CIRCUIT_OPEN") retryLater();
 * ```
 */
export function isPilotError(error: unknown): error is PilotError {
  return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[PILOT_ERROR] === true;
}

/**
 * Invalid options given to `pilot()` or an interceptor factory. Thrown at creation,
 * before any query runs; the message names every bad field and the rule it broke.
 *
 * @example
 * ```ts
 * try { monitor({ slowQueryMs: -1 }); } catch (error) {
 *   // ConfigError: monitor: slowQueryMs: must be >= 0 (got -1)
 * }
 * ```
 */
export class ConfigError extends PilotError {
  /** Each problem as `{ path, message }`; `path` is dotted, e.g. `thresholds.connection`. */
  readonly issues: readonly { path: string; message: string }[];

  constructor(scope: string, issues: readonly { path: string; message: string }[]) {
    super("CONFIG_INVALID", `${scope}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`);
    this.name = "ConfigError";
    this.issues = issues;
  }

  /**
   * Build from valibot issues, keeping only the path and message (never the whole input,
   * which may hold a password). With the `schema` that was parsed, an unknown key names the
   * nearest valid option: `unknown option slowQueryMS — did you mean slowQueryMs?`.
   *
   * @example
   * ```ts
   * const result = v.safeParse(schema, input);
   * if (!result.success) throw ConfigError.fromIssues("monitor", result.issues, schema);
   * ```
   */
  static fromIssues(scope: string, issues: readonly BaseIssue<unknown>[], schema?: unknown): ConfigError {
    return new ConfigError(scope, issues.map((issue) => describeIssue(issue, schema)));
  }
}

/**
 * The circuit breaker of a lane is open: the call was rejected without touching the network.
 *
 * @example
 * ```ts
 * catch (error) { if (error instanceof CircuitOpenError) res.setHeader("retry-after", Math.ceil(error.retryAfterMs / 1000)); }
 * ```
 */
export class CircuitOpenError extends PilotError {
  /** The failure category that opened the circuit. */
  readonly category: string;
  /** The lane whose circuit is open. */
  readonly lane: string;
  /** How long until the breaker lets a probe through. */
  readonly retryAfterMs: number;

  /**
   * `cause` (standard `Error.cause`): the failure that opened the circuit, or the latest failed
   * probe's — the error to read for why the lane is down (`database "nope" does not exist`,
   * `password authentication failed …`). Absent for a circuit restored from a snapshot.
   */
  constructor(lane: string, category: string, retryAfterMs: number, cause?: unknown) {
    super(
      "CIRCUIT_OPEN",
      `circuit open for lane "${lane}" after ${category} failures${causeText(cause)}; retry in ${
        Math.max(0, Math.round(retryAfterMs))
      } ms`,
      cause === undefined ? undefined : { cause },
    );
    this.name = "CircuitOpenError";
    this.lane = lane;
    this.category = category;
    this.retryAfterMs = retryAfterMs;
  }
}

function causeText(cause: unknown): string {
  const message = typeof cause === "object" && cause !== null ? (cause as { message?: unknown }).message : undefined;
  return typeof message === "string" && message !== "" ? ` (${message.slice(0, 200)})` : "";
}

/**
 * Waited longer than `queueTimeoutMs` for a permit.
 *
 * @example
 * ```ts
 * catch (error) { if (error instanceof PoolTimeoutError) console.warn(error.message); }
 * ```
 */
export class PoolTimeoutError extends PilotError {
  readonly lane: string;
  readonly waitedMs: number;
  constructor(lane: string, waitedMs: number, limit: number, queued: number) {
    super(
      "POOL_TIMEOUT",
      `lane "${lane}": waited ${Math.round(waitedMs)} ms for a connection (limit ${limit}, ${queued} queued)`,
    );
    this.name = "PoolTimeoutError";
    this.lane = lane;
    this.waitedMs = waitedMs;
  }
}

/**
 * The queue in front of the pool is full: the call was shed at once.
 *
 * @example
 * ```ts
 * catch (error) { if (error instanceof PoolSaturatedError) return new Response("busy", { status: 503 }); }
 * ```
 */
export class PoolSaturatedError extends PilotError {
  readonly lane: string;
  constructor(lane: string, limit: number, maxQueue: number) {
    super("POOL_SATURATED", `lane "${lane}" saturated: ${limit} in flight and ${maxQueue} queued (maxQueue)`);
    this.name = "PoolSaturatedError";
    this.lane = lane;
  }
}

/**
 * The operation's time budget ran out; the query was cancelled on the server.
 *
 * @example
 * ```ts
 * catch (error) { if (error instanceof DeadlineExceededError) console.warn(`gave up after ${error.budgetMs} ms`); }
 * ```
 */
export class DeadlineExceededError extends PilotError {
  readonly budgetMs: number;
  constructor(budgetMs: number, options?: { cause?: unknown }) {
    super("DEADLINE_EXCEEDED", `deadline of ${budgetMs} ms exceeded`, options);
    this.name = "DeadlineExceededError";
    this.budgetMs = budgetMs;
  }
}
