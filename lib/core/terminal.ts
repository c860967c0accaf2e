/**
 * The terminal step: what runs after the last interceptor — send the operation's query to a
 * connection (its lane's pool, or the send it was steered to), or perform a transaction,
 * reservation or listen; and cancel a sent query on the server.
 *
 * @module
 */
import type { Sql } from "postgres";
import { markUnreachable } from "../shared/classify.ts";
import { isPilotError } from "../shared/errors.ts";
import type { Lane } from "./lanes.ts";
import type { Operation } from "./operation.ts";
import { cancelledError, captureSettlement, type RawQuery } from "./postgres-internals.ts";

/** The terminal step of one pilot, over its lanes. */
export interface Terminal {
  /** Run the operation itself (after the chain). */
  perform(op: Operation): Promise<unknown>;
}

const noop = (): void => {};

/**
 * Build the terminal step over `lanes`; `unknownLane` makes the error for a lane that does not exist.
 *
 * @example
 * ```ts
 * const terminal = createTerminal(lanes, (name) => new Error(`no lane ${name}`));
 * const chain = compose(interceptors, terminal.perform);
 * ```
 */
export function createTerminal(lanes: ReadonlyMap<string, Lane>, unknownLane: (name: string) => Error): Terminal {
  function perform(op: Operation): Promise<unknown> {
    const gate = op.dispatchGate;
    if (gate !== undefined) {
      const refusal = gate(op);
      if (refusal !== undefined) return Promise.reject(refusal);
    }
    if (op.task === undefined) return send(op);
    if (op.aborted) return Promise.reject(op.abortReason);
    op.dispatched = true;
    op.dispatchedAt = performance.now();
    return op.task(op);
  }

  function send(op: Operation): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const original = op.query!;
      if (op.aborted) return reject(op.abortReason);
      // postgres.js marks a query cancelled before it started; sending it would park a connection.
      if (original.cancelled) return reject(cancelledError());
      const lane = lanes.get(op.lane);
      if (lane === undefined) return reject(unknownLane(op.lane));
      const query = op.attempt > 1 ? recreate(original, lane.sql) : original;
      op.current = query;
      op.cancelSent = cancelSent;
      captureSettlement(query, resolve, (error) => {
        // A server error for a query postgres.js never wrote to a connection came while the
        // connection was being established (wrong database, role, password): the lane, not
        // the statement, is at fault.
        if (!(query as { state?: unknown }).state) markUnreachable(error);
        reject(op.aborted ? abortedWith(op, error) : error);
      });
      op.dispatched = true;
      op.dispatchedAt = performance.now();
      const via = op.via;
      if (via !== undefined) via(query);
      else lane.handler(query);
    });
  }

  /**
   * `op.abort()` after the query was sent: ask the server to cancel it — unless it was written
   * to a connection behind another query and is not running yet. postgres.js 3.4.9 marks such a
   * query and, when its turn comes, drops it from the connection's list together with the
   * reply it is owed: the caller never settles and the next query gets its rows. So it runs to
   * completion instead; `deadline()` has already answered its caller.
   */
  function cancelSent(op: Operation): void {
    const lane = lanes.get(op.lane);
    const query = op.current as (RawQuery & { state?: unknown; active?: boolean }) | undefined;
    if (lane === undefined || query === undefined) return;
    if (!query.state) {
      // Not written to any connection yet: postgres.js takes it out of its queue and rejects it.
      void lane.canceller(query).catch(noop);
      defuse(query);
      return;
    }
    if (query.active !== true) return;
    void lane.canceller(query).catch(noop);
  }

  return { perform };
}

/**
 * A query the caller aborted (its `AbortSignal`) and the server cancelled: the caller gets its
 * own abort reason, with the server's 57014 as `cause`. `query.cancel()` keeps postgres.js's
 * behaviour (the server's error), and a deadline translates its own.
 */
function abortedWith(op: Operation, error: unknown): unknown {
  const reason = op.abortReason;
  // pgpilot's own reasons (a deadline) are translated by the interceptor that aborted.
  if ((error as { code?: unknown } | undefined)?.code !== "57014" || isCancelMarker(reason) || isPilotError(reason)) {
    return error;
  }
  if (typeof reason === "object" && reason !== null && !Object.hasOwn(reason, "cause")) {
    try {
      Object.defineProperty(reason, "cause", { value: error, configurable: true, writable: true });
    } catch {
      // A frozen reason stays as it is.
    }
  }
  return reason;
}

/** The reason pilot gives `op.abort()` for `query.cancel()` (its own 57014). */
function isCancelMarker(reason: unknown): boolean {
  return (reason as { code?: unknown } | undefined)?.code === "57014";
}

/**
 * A query not yet written may instead be the one a connection is connecting for (waiting out
 * the reconnect backoff). postgres.js 3.4.9 marks it cancelled, and when that connection is up
 * it skips the query and never hands the connection back to the pool: one connection lost for
 * good per cancelled query — after an outage with deadlines, the whole pool, every later call
 * waiting until its deadline. So the orphan (its caller already has its error, and its
 * settlement is pilot's, already ignored) becomes a harmless `select 1` that runs normally and
 * lets the connection join the pool. A query still in the pool's queue was removed from it and
 * is never run.
 */
function defuse(query: RawQuery): void {
  const orphan = query as unknown as Record<string, unknown>;
  orphan.strings = ["select 1"];
  orphan.args = [];
  orphan.tagged = false;
  orphan.options = { prepare: false };
  orphan.cursorFn = undefined;
  orphan.forEachFn = undefined;
  orphan.onlyDescribe = false;
  orphan.cancelled = null;
}

/** A fresh copy of a query for a retry: a settled postgres.js query cannot be sent again. */
function recreate(query: RawQuery, sql: Sql<any>): RawQuery {
  const copy = (query.tagged
    ? (sql as any)(query.strings, ...query.args)
    : sql.unsafe(query.strings[0]!, query.args as any[], { ...query.options })) as unknown as RawQuery;
  Object.assign(copy.options, query.options);
  copy.isRaw = query.isRaw;
  copy.executed = true;
  return copy;
}
