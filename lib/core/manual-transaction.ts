/**
 * Transactions an application opens with plain statements on a reservation (`BEGIN` …
 * `COMMIT`, as kysely and hand-written code do): pilot recognises them, so monitor, tracing and
 * the breaker see a transaction with its queries as children, as they do for `sql.begin()`.
 *
 * @module
 */
import { NO_SQL, Operation, type OperationAnalysis } from "./operation.ts";

/** Where a statement stands in a transaction it manages by hand. */
export type Boundary = "begin" | "commit" | "rollback" | undefined;

const ROLLBACK_TO = /^\s*rollback\s+(?:work\s+|transaction\s+)?to\b/i;
const CHAINED = /\band\s+chain\s*$/i;

/**
 * Whether a statement opens, commits or rolls back a transaction (`ROLLBACK TO SAVEPOINT` and
 * `COMMIT AND CHAIN` do neither: the transaction goes on).
 *
 * @example
 * ```ts
 * transactionBoundary(analyzeSql("begin isolation level serializable")); // "begin"
 * transactionBoundary(analyzeSql("rollback to savepoint a")); // undefined
 * ```
 */
export function transactionBoundary(analysis: OperationAnalysis): Boundary {
  switch (analysis.command) {
    case "BEGIN":
    case "START":
      return "begin";
    case "COMMIT":
    case "END":
    case "PREPARE":
      if (analysis.command === "PREPARE" && !/^\s*prepare\s+transaction\b/i.test(analysis.text)) return undefined;
      return CHAINED.test(analysis.text) ? undefined : "commit";
    case "ROLLBACK":
    case "ABORT":
      return ROLLBACK_TO.test(analysis.text) || CHAINED.test(analysis.text) ? undefined : "rollback";
    default:
      return undefined;
  }
}

const MANUAL_ANALYSIS = NO_SQL("BEGIN");

/**
 * One transaction opened by a `BEGIN` on a reservation: an operation of kind `transaction`,
 * child of the reservation, that settles when `COMMIT` or `ROLLBACK` does. It fails with the
 * first error a statement inside it met (a `COMMIT` of a failed transaction only rolls back),
 * or with the error of the `COMMIT` itself (40001 at commit).
 *
 * @example
 * ```ts
 * const transaction = new ManualTransaction(reservationOp);
 * run(transaction.op); // through the chain; settles when end() is called
 * transaction.failed(error); transaction.end(undefined);
 * ```
 */
export class ManualTransaction {
  readonly op: Operation;
  #error: unknown = undefined;
  #failed = false;
  #done = false;
  #resolve: ((value: unknown) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;

  constructor(reservation: Operation) {
    this.op = new Operation("transaction", MANUAL_ANALYSIS, reservation.lane, reservation, undefined, reservation.scope);
    this.op.task = () =>
      new Promise((resolve, reject) => {
        if (this.#done) return this.#failed ? reject(this.#error) : resolve(undefined);
        this.#resolve = resolve;
        this.#reject = reject;
      });
  }

  /** A statement inside it failed: the transaction is aborted on the server. */
  failed(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#error = error;
  }

  /** It ended: `error` is the ending statement's own failure, if it failed. */
  end(error: unknown): void {
    if (this.#done) return;
    if (error !== undefined) this.failed(error);
    this.#done = true;
    if (this.#failed) this.#reject?.(this.#error);
    else this.#resolve?.(undefined);
  }
}
