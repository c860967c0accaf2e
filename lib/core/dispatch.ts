/**
 * How an operation's query reaches a connection. The dispatch state lives on the operation but
 * belongs to lib/core: the pipeline and routing read and steer it only through these functions.
 *
 * @module
 */
import type { Operation } from "./operation.ts";
import type { RawQuery } from "./postgres-internals.ts";

/** Writes a postgres.js query onto a connection. */
export type Send = (query: RawQuery) => void;

/**
 * The send an operation's query will go out through, when it is not its lane's pool: a
 * transaction's or reservation's connection, `file()`'s reader, or a pipelined connection.
 *
 * @example
 * ```ts
 * if (sendOf(op) !== undefined && !isPipelineSend(sendOf(op))) return false; // bound elsewhere
 * ```
 */
export function sendOf(op: Operation): Send | undefined {
  return op.via;
}

/**
 * Send the operation's query through `send` instead of its lane's pool (`undefined`: the pool
 * again). Only for root queries, before `next()` reaches pilot's terminal step.
 *
 * @example
 * ```ts
 * sendThrough(op, connection.send);
 * ```
 */
export function sendThrough(op: Operation, send: Send | undefined): void {
  op.via = send;
}

/**
 * The postgres.js query of the latest attempt (a fresh copy on a retry), once it was sent.
 *
 * @example
 * ```ts
 * pipeline.settle(connection, sentQuery(op), error, now);
 * ```
 */
export function sentQuery(op: Operation): RawQuery | undefined {
  return op.current;
}

/**
 * The postgres.js connection the operation's query went out on (an opaque identity, stable for
 * the connection's life), once postgres.js has put it on one.
 *
 * @example
 * ```ts
 * const connection = connectionOf(op);
 * if (connection !== undefined) lastSettled.set(connection, now);
 * ```
 */
export function connectionOf(op: Operation): object | undefined {
  const connection = (op.current as { state?: unknown } | undefined)?.state;
  return typeof connection === "object" && connection !== null ? connection : undefined;
}

/**
 * Have pilot ask `gate` right before the operation is handed to postgres.js: an error to reject
 * it with instead (no I/O), or undefined to let it go. The breaker sets one, so that a call
 * admitted while the circuit was closed but still waiting in pgpilot's queue (adaptive) when it
 * opened is turned away instead of costing a connection attempt against a database that is
 * down (each failed attempt raises postgres.js's reconnect backoff for the whole pool). One gate
 * per operation; `undefined` removes it.
 *
 * @example
 * ```ts
 * guardDispatch(op, (op) => (laneIsDown(op.lane) ? new Error("down") : undefined));
 * ```
 */
export function guardDispatch(op: Operation, gate: ((op: Operation) => unknown) | undefined): void {
  op.dispatchGate = gate;
}
