/**
 * Which operations the pipeline may write onto a shared reserved connection.
 *
 * @module
 */
import { sendOf } from "../core/dispatch.ts";
import type { Operation } from "../core/operation.ts";
import { isPipelineSend } from "./connection.ts";

/** Statements that may share a reserved connection with other callers' statements. */
const PIPELINED_COMMANDS = new Set(["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE", "SHOW", "EXPLAIN"]);

/**
 * Whether an operation may go to a reserved connection: a root query (not a transaction's,
 * not a task such as begin, reserve or listen) whose statement leaves no session state behind
 * that the next caller on the same connection could trip over. Cursors and forEach stream for
 * as long as the caller reads, so they keep a pool connection of their own. A simple-protocol
 * text with several statements could open a transaction on the shared connection.
 *
 * @example
 * ```ts
 * const connection = pipelinable(op) ? pipeline.pick(inFlight, pooled, now) : undefined;
 * ```
 */
export function pipelinable(op: Operation): boolean {
  const query = op.query;
  if (op.kind !== "query" || query === undefined || op.parent !== undefined) return false;
  const send = sendOf(op);
  if (send !== undefined && !isPipelineSend(send)) return false;
  if (query.cursorFn !== undefined || query.forEachFn !== undefined) return false;
  if (!PIPELINED_COMMANDS.has(op.command)) return false;
  return !(query.options.simple === true && query.strings[0]!.includes(";"));
}
