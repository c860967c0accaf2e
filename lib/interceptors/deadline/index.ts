/**
 * `deadline()`: a time budget per operation, counted from when the operation started, so time
 * spent waiting in a queue (adaptive) and on retries (retry) is part of it.
 *
 * On expiry the operation is aborted: pilot cancels a query already sent on the server
 * (postgres.js's cancel request), a query still waiting leaves its queue, and the caller gets
 * `DeadlineExceededError` at once — even when the server or the network never answers. For a
 * transaction, the query running inside it is cancelled (inner queries follow the
 * transaction's signal), so postgres.js rolls it back.
 *
 * @module
 */
import * as v from "valibot";
import { durationMs, parseOptions } from "../../shared/config.ts";
import { DeadlineExceededError, isPilotError } from "../../shared/errors.ts";
import type { Interceptor } from "../../core/interceptor.ts";
import type { Operation } from "../../core/operation.ts";
import { type Subscription, Listeners } from "../../shared/listeners.ts";

/** Options of `deadline()`. */
export interface DeadlineOptions {
  /**
   * Budget of every operation in milliseconds, queue wait and retries included. A call overrides
   * it with `sql.with({ timeoutMs })`. At most 2^31−1 ms (what a timer can hold). Default 30 000.
   */
  timeoutMs?: number;
}

/** An operation whose budget ran out. */
export interface DeadlineExpiry {
  readonly budgetMs: number;
  readonly kind: Operation["kind"];
  readonly lane: string;
  /** `db.operation.name` (`SELECT`, `BEGIN`, …); never SQL text. */
  readonly command: string;
  /** True when the operation had reached postgres.js (so a server-side cancel was sent). */
  readonly dispatched: boolean;
}

/** @deprecated Use `DeadlineInterceptor`. */
export type Deadline = DeadlineInterceptor;

/** The interceptor `deadline()` returns. */
export interface DeadlineInterceptor extends Interceptor {
  readonly name: "deadline";
  /** Listen to expiries. */
  onExpire(listener: (expiry: DeadlineExpiry) => void): Subscription;
  stats(): { timeoutMs: number; expired: number };
}

const OPTIONS = v.strictObject({
  timeoutMs: v.optional(durationMs(0, { exclusive: true }), 30_000),
});

/**
 * Create the deadline interceptor. Put it before `retry()` and `breaker()` so the budget covers
 * every attempt and an expiry counts as a timeout in the breaker.
 *
 * @example
 * ```ts
 * const sql = pilot(postgres(url), { interceptors: [deadline({ timeoutMs: 2_000 }), retry(), breaker()] });
 * await sql.with({ timeoutMs: 200 })`select pg_sleep(10)`; // DeadlineExceededError after 200 ms, cancelled on the server
 * ```
 */
export function deadline(options?: DeadlineOptions): DeadlineInterceptor {
  const config = parseOptions("deadline", OPTIONS, options);
  const expiries = new Listeners<DeadlineExpiry>("deadline.onExpire");
  let expired = 0;

  function expire(op: Operation, budget: number): DeadlineExceededError {
    const error = new DeadlineExceededError(budget);
    expired++;
    // The first reason wins: if the caller cancelled first, theirs stays the signal's reason.
    op.abort(error);
    if (!expiries.empty) {
      expiries.emit({ budgetMs: budget, kind: op.kind, lane: op.lane, command: op.command, dispatched: op.dispatched });
    }
    return error;
  }

  return {
    name: "deadline",
    stage: "budget",

    intercept(op, next) {
      // Inner queries follow their transaction's signal; only their errors need translating.
      if (op.parent !== undefined && !op.onReservation) {
        return op.abortable ? next().catch((error) => Promise.reject(translate(op, error))) : next();
      }
      // A reservation lasts as long as its holder wants; its queries carry their own budgets.
      if (op.kind === "reserve") return next();
      const budget = op.timeoutMs ?? config.timeoutMs;
      const remaining = budget - (performance.now() - op.startedAt);
      if (remaining <= 0) return Promise.reject(expire(op, budget));
      return new Promise((resolve, reject) => {
        let settled = false;
        const timer = setTimeout(() => {
          if (settled) return;
          settled = true;
          // Reject now: a query into a black hole would never settle by itself.
          reject(expire(op, budget));
        }, remaining);
        next().then(
          (value) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(value);
          },
          (error) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            reject(error);
          },
        );
      });
    },

    onExpire: (listener) => expiries.add(listener),

    stats: () => ({ timeoutMs: config.timeoutMs, expired }),
  };
}

/**
 * The error an inner query of an expired transaction gets: the cancel's 57014 (or the abort
 * reason itself, for a query not yet sent) becomes `DeadlineExceededError` with the cause.
 */
function translate(op: Operation, error: unknown): unknown {
  if (!op.aborted) return error;
  const reason = op.abortReason;
  if (!(reason instanceof DeadlineExceededError) || error === reason) return error;
  if (isPilotError(error)) return error;
  return new DeadlineExceededError(reason.budgetMs, { cause: error });
}
