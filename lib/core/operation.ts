/**
 * The Operation: the unit every interceptor sees — one executed query, one transaction, one
 * reservation or one `listen()`. Built once per execution, never for fragments.
 *
 * @module
 */
import type { RawQuery } from "./postgres-internals.ts";
import type { SqlAnalysis } from "../sql/analyze.ts";

/** What an operation is. `listen` runs on postgres.js's dedicated listener connection. */
export type OperationKind = "query" | "transaction" | "reserve" | "listen";

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
 * before the operation reaches the database. Facts an interceptor keeps per operation live in
 * typed slots (`OperationSlot`), not in ad-hoc fields.
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
  /** `query`, `transaction`, `reserve` or `listen`. */
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
  // Dispatch state: private to lib/core (read and written through lib/core/dispatch.ts).
  /** @internal What performs a transaction, reserve or listen (queries are sent by pilot). */
  task: ((op: Operation) => Promise<unknown>) | undefined = undefined;
  /** @internal The handler that sends a child or `file()` query, or a pipelined connection's send. */
  via: ((query: RawQuery) => void) | undefined = undefined;
  /** @internal The postgres.js query in flight (a fresh copy on a retry). */
  current: RawQuery | undefined = undefined;
  /** @internal Asked right before dispatch (see `guardDispatch` in lib/core/dispatch.ts). */
  dispatchGate: ((op: Operation) => unknown) | undefined = undefined;
  /** @internal Cancels the sent query on the server; pilot sets it when it sends one. */
  cancelSent: ((op: Operation) => void) | undefined = undefined;
  // Typed slots (OperationSlot): fields, not a Map or a Set, so keeping a fact per operation
  // costs no allocation and no hashing (a Set of operations cost ~2 µs per query on Bun).
  /** @internal */ slot0: unknown = undefined;
  /** @internal */ slot1: unknown = undefined;
  /** @internal */ slot2: unknown = undefined;
  /** @internal */ slot3: unknown = undefined;
  /** Lane chosen explicitly by the caller (`sql.lane()` / `sql.with({ lane })` / a comment hint). */
  readonly requestedLane: string | undefined;
  #controller: AbortController | undefined;
  #userSignal: AbortSignal | undefined;
  #unlink: (() => void)[] | undefined;
  #reason: unknown = NOT_ABORTED;
  #listeners: ((reason: unknown) => void)[] | undefined;
  #repeating = false;
  #attemptsDone: (() => void)[] | undefined;

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
    if (parent !== undefined || this.#userSignal !== undefined) this.#link();
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

  /**
   * True for a query that runs on a reservation (`sql.reserve()`), directly or inside a
   * transaction the application opened there with `BEGIN`. Unlike a `sql.begin()` transaction's
   * queries, each is judged on its own: its own deadline, its own breaker verdict.
   */
  get onReservation(): boolean {
    if (this.kind !== "query") return false;
    for (let parent = this.parent; parent !== undefined; parent = parent.parent) {
      if (parent.kind === "reserve") return true;
      if (parent.parent === undefined) return false;
    }
    return false;
  }

  /**
   * An `AbortSignal` that aborts with the operation, for APIs that want one. Created on first
   * use; `onAbort()` is the cheaper way to be told (an `AbortController` costs microseconds).
   */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** True once the operation has been aborted (by the caller, its transaction or an interceptor). */
  get aborted(): boolean {
    return this.#reason !== NOT_ABORTED;
  }

  /** Why it was aborted (`undefined` while it is not). */
  get abortReason(): unknown {
    return this.#reason === NOT_ABORTED ? undefined : this.#reason;
  }

  /** True when something outside the chain can abort it: the caller's signal or its transaction. */
  get abortable(): boolean {
    return this.#userSignal !== undefined || this.parent !== undefined || this.#listeners !== undefined;
  }

  /**
   * Call `listener` once when the operation is aborted (at once if it already is); returns a
   * function that stops listening. No `AbortController` is created.
   */
  onAbort(listener: (reason: unknown) => void): () => void {
    if (this.aborted) {
      listener(this.#reason);
      return noop;
    }
    const listeners = (this.#listeners ??= []);
    listeners.push(listener);
    return () => {
      const index = listeners.indexOf(listener);
      if (index >= 0) listeners.splice(index, 1);
    };
  }

  /**
   * Abort the operation: waiters in queues leave, a query already sent is cancelled on the
   * server, queries of an aborted transaction are cancelled too. The first reason wins.
   */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.#reason = reason;
    this.#controller?.abort(reason);
    if (this.dispatched) this.cancelSent?.(this);
    const listeners = this.#listeners;
    if (listeners === undefined) return;
    this.#listeners = undefined;
    for (const listener of listeners) listener(reason);
  }

  /**
   * True while an interceptor (`retry()`) may run the rest of the chain again after a failed
   * attempt. Interceptors further in that judge outcomes (the breaker) then wait for
   * `onAttemptsDone` before counting a failure: one logical call, one outcome.
   */
  get repeating(): boolean {
    return this.#repeating;
  }

  /** Called by an interceptor that may call `next()` again after a rejection, before its first attempt. */
  beginAttempts(): void {
    this.#repeating = true;
  }

  /** Called by that interceptor once it will make no further attempt (it returns or throws). */
  attemptsDone(): void {
    if (!this.#repeating) return;
    this.#repeating = false;
    const listeners = this.#attemptsDone;
    if (listeners === undefined) return;
    this.#attemptsDone = undefined;
    for (const listener of listeners) listener();
  }

  /** Call `listener` when the operation has made its last attempt (at once if it is not repeating). */
  onAttemptsDone(listener: () => void): void {
    if (!this.#repeating) {
      listener();
      return;
    }
    (this.#attemptsDone ??= []).push(listener);
  }

  /** @internal Drop the links to signals that outlive the operation. Called when it settles. */
  release(): void {
    const unlink = this.#unlink;
    if (unlink === undefined) return;
    this.#unlink = undefined;
    for (const fn of unlink) fn();
  }

  /** Follow the caller's signal, or the enclosing transaction (which already follows it). */
  #link(): void {
    const parent = this.parent;
    if (parent !== undefined) {
      this.#unlink = [parent.onAbort((reason) => this.abort(reason))];
      return;
    }
    const user = this.#userSignal;
    if (user === undefined) return;
    if (user.aborted) return this.abort(user.reason);
    const forward = () => this.abort(user.reason);
    user.addEventListener("abort", forward, { once: true });
    // A long-lived caller signal must not collect one listener per finished operation.
    this.#unlink = [() => user.removeEventListener("abort", forward)];
  }
}

const NOT_ABORTED = Symbol("not aborted");

const SLOT_FIELDS = ["slot0", "slot1", "slot2", "slot3"] as const;
let slotsInUse = 0;

/**
 * A typed per-operation fact one interceptor keeps (monitor's place in its in-flight list, a
 * routing reason, …). Each slot is a field of the operation: no allocation per operation.
 * At most four slots exist per process; define them once, at module level.
 *
 * @example
 * ```ts
 * const startedOnLane = new OperationSlot<string | undefined>("audit.lane", undefined);
 * startedOnLane.set(op, op.lane);
 * startedOnLane.get(op); // "primary"
 * ```
 */
export class OperationSlot<T> {
  readonly #field: (typeof SLOT_FIELDS)[number];
  readonly #initial: T;

  /** @param name what the slot holds, for error messages; `initial` is what `get` returns before `set`. */
  constructor(readonly name: string, initial: T) {
    const field = SLOT_FIELDS[slotsInUse];
    if (field === undefined) throw new Error(`pgpilot: no operation slot left for "${name}" (at most ${SLOT_FIELDS.length})`);
    slotsInUse++;
    this.#field = field;
    this.#initial = initial;
  }

  /** The value for `op` (the initial value until set). */
  get(op: Operation): T {
    const value = op[this.#field];
    return value === undefined ? this.#initial : (value as T);
  }

  /** Keep `value` for `op`. */
  set(op: Operation, value: T): void {
    op[this.#field] = value;
  }
}
const noop = (): void => {};

/**
 * Options a caller attaches to a scoped `sql` (`sql.with({...})`), carried by every operation
 * created through it.
 */
export interface CallScope {
  /** Route to this lane (must exist). */
  readonly lane?: string;
  /** Abort the operation (waiting or running) when this signal aborts. */
  readonly signal?: AbortSignal;
  /** Time budget for each operation, queue wait included (used by `deadline()`); ms, at most 2^31−1. */
  readonly timeoutMs?: number;
}
