/**
 * The terminal step: what runs after the last interceptor — send the operation's query to a
 * connection (its lane's pool, or the send it was steered to), or perform a transaction,
 * reservation or listen; and cancel a sent query on the server.
 *
 * @module
 */
import type { Sql } from "postgres";
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
      captureSettlement(query, resolve, (error) => reject(op.aborted ? abortedWith(op, error) : error));
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
    if (query.state !== undefined && query.state !== null && query.active !== true) return;
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
