/**
 * `retry()`: retries only what is safe to run twice.
 *
 * - A whole transaction (`sql.begin` callback) that failed with a serialization failure (40001)
 *   or a deadlock (40P01): the server rolled it back, so running the callback again is what
 *   PostgreSQL's documentation asks applications to do.
 * - A read-only statement outside a transaction that failed with a connection-category error.
 *
 * Never a write outside a transaction (it may have committed before the connection died), never
 * an inner query of a transaction, never a cursor or `forEach` (rows already delivered would be
 * delivered twice), never a pgpilot rejection (`CircuitOpenError`, a full queue, a deadline),
 * never after the operation was aborted (its deadline expired or the caller cancelled), and never
 * onto a lane an interceptor reports unavailable (an open breaker).
 *
 * @module
 */
import type { Attributes, Counter, MeterProvider } from "@opentelemetry/api";
import * as v from "valibot";
import { classify, errorCode } from "../../shared/classify.ts";
import { boundedInteger, durationMs, parseOptions, METER_PROVIDER } from "../../shared/config.ts";
import { ConfigError, isPilotError } from "../../shared/errors.ts";
import type { Interceptor, Next, PilotContext } from "../../core/interceptor.ts";
import type { Operation } from "../../core/operation.ts";
import { reportHookError } from "../../shared/diag.ts";
import { ATTR, RETRY_METRIC } from "../../telemetry/names.ts";

export { RETRY_METRIC } from "../../telemetry/names.ts";
import { pgpilotMeter } from "../../telemetry/otel.ts";
import { type Backoff, exponentialBackoff } from "../../shared/backoff.ts";
import { type Subscription, Listeners } from "../../shared/listeners.ts";

/** Options of `retry()`. */
export interface RetryOptions {
  /** Most attempts per operation, the first included, 1 to 100. Default 3. */
  maxAttempts?: number;
  /** Delay before the first retry; doubles per retry, half of it random; 0 to 3 600 000 ms (1 h). Default 20 ms. */
  baseDelayMs?: number;
  /** Cap of any delay, 0 to 3 600 000 ms (1 h). Default 1 000 ms. */
  maxDelayMs?: number;
  /** Retry whole transactions on 40001 / 40P01. Default true. */
  transactions?: boolean;
  /** Retry read-only statements outside transactions on connection failures. Default true. */
  reads?: boolean;
  /** Meter provider (default: the global one, taken when `pilot()` attaches it). */
  meterProvider?: MeterProvider;
}

/** Why an operation was retried. */
export type RetryReason = "serialization" | "deadlock" | "connection";

/** A retry about to happen. */
export interface RetryEvent {
  readonly kind: Operation["kind"];
  readonly lane: string;
  /** `db.operation.name`; never SQL text. */
  readonly command: string;
  readonly reason: RetryReason;
  /** The error code that caused it (SQLSTATE or connection code). */
  readonly code: string | undefined;
  /** The attempt about to run (2 for the first retry). */
  readonly attempt: number;
  readonly delayMs: number;
}

/** `retry().stats()`. */
export interface RetryStats {
  /** Attempts beyond the first, by reason. */
  retries: Record<RetryReason, number>;
  /** Operations that succeeded after at least one retry. */
  recovered: number;
  /** Operations that still failed with a retryable error after `maxAttempts`. */
  exhausted: number;
}

/** @deprecated Use `RetryInterceptor`. */
export type Retry = RetryInterceptor;

/** The interceptor `retry()` returns. */
export interface RetryInterceptor extends Interceptor {
  readonly name: "retry";
  readonly retries: true;
  /** Listen to retries (called before the delay). */
  onRetry(listener: (event: RetryEvent) => void): Subscription;
  stats(): RetryStats;
}


const SCHEMA = v.strictObject({
  maxAttempts: v.optional(boundedInteger(1, 100), 3),
  baseDelayMs: v.optional(durationMs(0, { max: 3_600_000 }), 20),
  maxDelayMs: v.optional(durationMs(0, { max: 3_600_000 }), 1_000),
  transactions: v.optional(v.boolean(), true),
  reads: v.optional(v.boolean(), true),
  meterProvider: v.optional(METER_PROVIDER),
});

/**
 * Create the retry interceptor. Put it after `deadline()` (the budget covers every attempt) and
 * before `breaker()` (every attempt asks the breaker).
 *
 * @example
 * ```ts
 * const sql = pilot(postgres(url), { interceptors: [deadline({ timeoutMs: 5_000 }), retry({ maxAttempts: 5 }), breaker()] });
 * await sql.begin("isolation level serializable", async (tx) => {
 *   const [{ total }] = await tx`select sum(amount) as total from ledger`;
 *   await tx`insert into ledger (amount) values (${-total})`;
 * }); // re-run on 40001 until it commits (at most 5 attempts)
 * ```
 */
export function retry(options?: RetryOptions): RetryInterceptor {
  const config = parseOptions("retry", SCHEMA, options);
  if (config.maxDelayMs < config.baseDelayMs) {
    throw new ConfigError("retry", [{
      path: "maxDelayMs",
      message: `must be >= baseDelayMs (${config.baseDelayMs}), got ${config.maxDelayMs}`,
    }]);
  }
  const backoff: Backoff = exponentialBackoff({ baseMs: config.baseDelayMs, maxMs: config.maxDelayMs });
  const listeners = new Listeners<RetryEvent>("retry.onRetry");
  const stats: RetryStats = { retries: { serialization: 0, deadlock: 0, connection: 0 }, recovered: 0, exhausted: 0 };
  let laneOpen: (lane: string) => boolean = () => true;
  let closed = false;
  let counter: Counter | undefined;
  let pool = "default";
  const attributes = new Map<string, Attributes>();

  /** Could this operation ever be retried? Decided before running it, so the rest pay nothing. */
  function eligible(op: Operation): boolean {
    if (op.parent !== undefined) return false;
    if (op.kind === "transaction") return config.transactions;
    if (op.kind !== "query" || !config.reads || !op.readOnly) return false;
    const query = op.query;
    return query !== undefined && query.cursorFn === undefined && query.forEachFn === undefined;
  }

  /** Why this failure may be retried, or undefined. */
  function reasonFor(op: Operation, error: unknown): RetryReason | undefined {
    if (isPilotError(error)) return undefined;
    if (op.kind === "transaction") {
      const code = errorCode(error);
      return code === "40001" ? "serialization" : code === "40P01" ? "deadlock" : undefined;
    }
    return lostConnection(error) ? "connection" : undefined;
  }

  function count(op: Operation, reason: RetryReason): void {
    stats.retries[reason]++;
    if (counter === undefined) return;
    try {
      const key = `${op.lane}\u0000${reason}`;
      let attrs = attributes.get(key);
      if (attrs === undefined) {
        attrs = { [ATTR.POOL_NAME]: pool, [ATTR.LANE]: op.lane, [ATTR.RETRY_REASON]: reason };
        attributes.set(key, attrs);
      }
      counter.add(1, attrs);
    } catch (error) {
      reportHookError("retry.metrics", error);
    }
  }

  async function attempts(op: Operation, next: Next): Promise<unknown> {
    op.beginAttempts();
    try {
      return await attemptLoop(op, next);
    } finally {
      op.attemptsDone();
    }
  }

  async function attemptLoop(op: Operation, next: Next): Promise<unknown> {
    for (let attempt = 1;; attempt++) {
      try {
        const value = await next();
        if (attempt > 1) stats.recovered++;
        return value;
      } catch (error) {
        const reason = reasonFor(op, error);
        if (reason === undefined || op.aborted || closed || !laneOpen(op.lane)) throw error;
        if (attempt >= config.maxAttempts) {
          stats.exhausted++;
          throw error;
        }
        const delayMs = backoff(attempt);
        count(op, reason);
        if (!listeners.empty) {
          listeners.emit({
            kind: op.kind,
            lane: op.lane,
            command: op.command,
            reason,
            code: errorCode(error),
            attempt: attempt + 1,
            delayMs,
          });
        }
        await pause(delayMs, op);
        // The deadline expired (or the caller gave up) while we waited; the pool was ended; the
        // circuit opened.
        if (op.aborted || closed || !laneOpen(op.lane)) throw error;
      }
    }
  }

  return {
    name: "retry",
    stage: "retry",
    retries: true,

    attach(context: PilotContext) {
      pool = context.name;
      laneOpen = (lane) => context.capabilities.laneAvailable(lane);
      try {
        counter = pgpilotMeter(config.meterProvider ?? context.meterProvider).createCounter(RETRY_METRIC, {
          description: "Attempts beyond the first, by lane and reason (serialization, deadlock, connection)",
          unit: "{retry}",
        });
      } catch (error) {
        reportHookError("retry.metrics", error);
      }
    },

    intercept(op, next) {
      return eligible(op) ? attempts(op, next) : next();
    },

    onRetry: (listener) => listeners.add(listener),

    // pilot closes the interceptors before it ends the lanes: nothing is re-run after that.
    close() {
      closed = true;
      return Promise.resolve();
    },

    stats: () => ({ retries: { ...stats.retries }, recovered: stats.recovered, exhausted: stats.exhausted }),
  };
}

/**
 * Errors that say an established connection was lost under a statement (the server closed or
 * reset it, or terminated the backend). Only these make a read worth re-sending: another
 * connection of the pool may be fine. A failure to connect at all (refused, timed out, DNS,
 * `57P03` starting up, authentication, too many connections) is not retried: the next attempt
 * would meet the same server, fail the same way later, and raise postgres.js's shared
 * reconnect backoff for every caller.
 */
const LOST_CONNECTION = new Set(["CONNECTION_CLOSED", "ECONNRESET", "EPIPE", "ECONNABORTED", "57P01", "57P02"]);

function lostConnection(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && LOST_CONNECTION.has(code) && classify(error) === "connection";
}

/** Wait `ms`, or less if the operation is aborted meanwhile. */
function pause(ms: number, op: Operation): Promise<void> {
  if (ms <= 0 || op.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stopWatching();
      resolve();
    };
    const timer = setTimeout(done, ms);
    const stopWatching = op.onAbort(done);
  });
}
