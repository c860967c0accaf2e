/**
 * The Operation: the unit every interceptor sees — one executed query, one transaction or one
 * reservation (DESIGN §2). Built once per execution, never for fragments.
 *
 * @module
 */
import type { RawQuery } from "./internals.ts";
import type { SqlAnalysis } from "./sql/analyze.ts";

/** What an operation is. */
export type OperationKind = "query" | "transaction" | "reserve";

/** The analysis an operation carries: cached per call site, shared by every execution of it. */
export type OperationAnalysis = SqlAnalysis & { readonly text: string };

/** Analysis of a transaction or reserve, which have no SQL of their own. */
export const NO_SQL = (kind: "BEGIN" | "RESERVE" | "LISTEN" | "UNKNOWN"): OperationAnalysis =>
  Object.freeze({
    command: kind,
    collection: undefined,
    tables: Object.freeze([]) as readonly string[],
    readOnly: false,
    fingerprint: kind.toLowerCase(),
    normalized: kind.toLowerCase(),
    redacted: kind.toLowerCase(),
    laneHint: undefined,
    text: kind.toLowerCase(),
  });

/**
 * One executed query, transaction or reservation.
 *
 * Interceptors read its fields; `lane` may be changed by a routing interceptor (affinity)
 * before the operation reaches the database. `attributes` is a small bag interceptors use to
 * pass facts to each other (e.g. the routing reason) and to telemetry.
 *
 * @example
 * ```ts
 * const logSlow: Interceptor = {
 *   name: "log",
 *   async intercept(op, next) {
 *     try { return await next(); }
 *     finally { console.log(op.kind, op.command, op.collection, performance.now() - op.startedAt); }
 *   },
 * };
 * ```
 */
export class Operation {
  /** `query`, `transaction` or `reserve`. */
  readonly kind: OperationKind;
  /** Cached SQL analysis of the statement (shared, frozen). */
  readonly analysis: OperationAnalysis;
  /** The enclosing transaction or reservation, for queries inside one. */
  readonly parent: Operation | undefined;
  /** Lane the operation runs on. Routing interceptors may change it before calling `next()`. */
  lane: string;
  /** When the operation started (`performance.now()` milliseconds). */
  readonly startedAt: number;
  /** Per-call deadline override in milliseconds (from `sql.with({ timeoutMs })`). */
  readonly timeoutMs: number | undefined;
  /** How many times the rest of the chain has been run for this operation (retries add one each). */
  attempt = 0;
  /** Set once the operation has reached postgres.js (the query was sent or queued there). */
  dispatched = false;
  /**
   * When the query was handed to postgres.js (`performance.now()` ms; 0 before). The time from
   * `startedAt` to here is the wait in pgpilot's chain (queue, routing); for transactions and
   * reservations it is when postgres.js was asked to begin or reserve.
   */
  dispatchedAt = 0;
  /** The postgres.js query, for `kind === "query"` (undefined for `listen`). */
  readonly query: RawQuery | undefined;
  /** The options of the scoped `sql` that created it (children inherit their parent's). */
  readonly scope: CallScope | undefined;
  /** @internal What performs a transaction, reserve or listen (queries are sent by pilot). */
  task: ((op: Operation) => Promise<unknown>) | undefined = undefined;
  /** @internal The handler that sends a child or `file()` query (transaction scope, file reader). */
  via: ((query: RawQuery) => void) | undefined = undefined;
  /** @internal The postgres.js query in flight (a fresh copy on a retry). */
  current: RawQuery | undefined = undefined;
  /** Lane chosen explicitly by the caller (`sql.lane()` / `sql.with({ lane })` / a comment hint). */
  readonly requestedLane: string | undefined;
  #attributes: Record<string, unknown> | undefined;
  #controller: AbortController | undefined;
  #userSignal: AbortSignal | undefined;
  #unlink: (() => void)[] | undefined;

  constructor(
    kind: OperationKind,
    analysis: OperationAnalysis,
    lane: string,
    parent: Operation | undefined,
    query: RawQuery | undefined,
    scope: CallScope | undefined,
  ) {
    this.kind = kind;
    this.analysis = analysis;
    this.lane = lane;
    this.parent = parent;
    this.query = query;
    this.scope = scope;
    this.startedAt = performance.now();
    this.timeoutMs = scope?.timeoutMs;
    this.requestedLane = scope?.lane ?? analysis.laneHint;
    this.#userSignal = scope?.signal;
  }

  /** Parameterized SQL text (literals of `unsafe()` text redacted). */
  get text(): string {
    return this.analysis.text;
  }
  /** Normalized-statement hash: equal for executions that differ only in values. */
  get fingerprint(): string {
    return this.analysis.fingerprint;
  }
  /** `SELECT`, `INSERT`, … (`db.operation.name`); `BEGIN` for transactions, `RESERVE` for reserve. */
  get command(): string {
    return this.analysis.command;
  }
  /** Main table when unambiguous (`db.collection.name`). */
  get collection(): string | undefined {
    return this.analysis.collection;
  }
  /** True when the statement provably does not write. */
  get readOnly(): boolean {
    return this.analysis.readOnly;
  }
  /** Small bag of facts interceptors share (allocated on first use). */
  get attributes(): Record<string, unknown> {
    return (this.#attributes ??= {});
  }
  /** True when some interceptor has put attributes on the operation. */
  get hasAttributes(): boolean {
    return this.#attributes !== undefined;
  }

  /**
   * Aborted when the caller cancels (`query.cancel()`, their `AbortSignal`) or an interceptor
   * calls `abort()` (deadline). Created on first use, so operations nobody waits on pay nothing.
   */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = new AbortController();
      this.#controller = controller;
      // A child follows its transaction: aborting the transaction cancels the query in flight.
      for (const upstream of [this.#userSignal, this.parent?.signal]) {
        if (upstream === undefined) continue;
        if (upstream.aborted) controller.abort(upstream.reason);
        else {
          const forward = () => controller.abort(upstream.reason);
          upstream.addEventListener("abort", forward, { once: true });
          // A long-lived caller signal must not collect one listener per finished operation.
          (this.#unlink ??= []).push(() => upstream.removeEventListener("abort", forward));
        }
      }
    }
    return this.#controller.signal;
  }

  /** @internal Drop listeners on signals that outlive the operation. Called when it settles. */
  release(): void {
    const unlink = this.#unlink;
    if (unlink === undefined) return;
    this.#unlink = undefined;
    for (const fn of unlink) fn();
  }

  /** True when the operation has been aborted (without creating a signal). */
  get aborted(): boolean {
    return (this.#controller?.signal.aborted ?? false) || (this.#userSignal?.aborted ?? false) ||
      (this.parent?.aborted ?? false);
  }

  /** True when someone may abort this operation (so pilot must watch for it after dispatch). */
  get abortable(): boolean {
    return this.#controller !== undefined || this.#userSignal !== undefined || (this.parent?.abortable ?? false);
  }

  /**
   * Abort the operation: waiters in queues leave, a query already sent is cancelled on the
   * server. The first reason wins.
   */
  abort(reason: unknown): void {
    const signal = this.signal;
    if (!signal.aborted) this.#controller!.abort(reason);
  }
}

/**
 * Options a caller attaches to a scoped `sql` (`sql.with({...})`), carried by every operation
 * created through it.
 */
export interface CallScope {
  /** Route to this lane (must exist). */
  readonly lane?: string;
  /** Abort the operation (waiting or running) when this signal aborts. */
  readonly signal?: AbortSignal;
  /** Time budget for each operation, queue wait included (used by `deadline()`). */
  readonly timeoutMs?: number;
}
