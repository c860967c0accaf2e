/**
 * `pilot()`: wraps postgres.js in the interceptor chain and returns a drop-in `sql`.
 *
 * How it stays drop-in: the caller gets postgres.js's own `Query` objects. pgpilot only swaps
 * the query's `handler`, so the chain runs when postgres.js would have started the query —
 * exactly once, however often it is awaited — and fragments, which are never started, are
 * never operations. See lib/core/postgres-internals.ts for the fields involved.
 *
 * @module
 */
import type { Sql } from "postgres";
import * as v from "valibot";
import { METER_PROVIDER, parseOptions, TRACER_PROVIDER } from "../shared/config.ts";
import { reportHookError } from "../shared/diag.ts";
import { ConfigError } from "../shared/errors.ts";
import { analyzeTemplate, analyzeUnsafe } from "../sql/cache.ts";
import { attachChain, detachChain } from "./attach.ts";
import { compose } from "./compose.ts";
import { combineHealth } from "./health.ts";
import type { Interceptor } from "./interceptor.ts";
import { createLanes } from "./lanes.ts";
import { closeChain, collectStats } from "./lifecycle.ts";
import { type CallScope, NO_SQL, Operation, type OperationAnalysis } from "./operation.ts";
import { callerSettlement, cancelledError, type RawQuery } from "./postgres-internals.ts";
import { ManualTransaction, transactionBoundary } from "./manual-transaction.ts";
import { createTerminal } from "./terminal.ts";
import { scopeChecker } from "./scope.ts";
import { bindMeters, markMeters, releaseMeters } from "../telemetry/meter-binding.ts";

import type { PilotOptions, PilotSql } from "./pilot-types.ts";
import { callable, fileQuery, OPERATION, type Tagged, VIA } from "./sql-surface.ts";

export type { PilotStats } from "./lifecycle.ts";
export type { PilotApi, PilotOptions, PilotSql, StatsSections } from "./pilot-types.ts";

const INTERCEPTOR = v.custom<Interceptor>(
  (value) =>
    typeof value === "object" && value !== null && typeof (value as Interceptor).name === "string" &&
    typeof (value as Interceptor).intercept === "function",
  "must be an interceptor (an object with a name and an intercept function)",
);

const OPTIONS = v.strictObject({
  name: v.optional(v.pipe(v.string(), v.minLength(1)), "default"),
  interceptors: v.optional(v.array(INTERCEPTOR), []),
  primary: v.optional(v.pipe(v.string(), v.minLength(1))),
  meterProvider: v.optional(METER_PROVIDER),
  tracerProvider: v.optional(TRACER_PROVIDER),
});

const FILE_ANALYSIS = NO_SQL("UNKNOWN");
const BEGIN_ANALYSIS = NO_SQL("BEGIN");
const RESERVE_ANALYSIS = NO_SQL("RESERVE");
const LISTEN_ANALYSIS = NO_SQL("LISTEN");
const noop = (): void => {};

/**
 * Wrap a postgres.js `sql` (or several, as lanes) in an interceptor chain.
 *
 * The result is the same `sql` to its users — every postgres.js call keeps working with the
 * same results, errors and types — plus `stats()`, `health()`, `close()`, `with()` and `lane()`.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { pilot, monitor } from "pgpilot";
 *
 * const sql = pilot(postgres(process.env.DATABASE_URL!, { max: 10 }), {
 *   name: "main",
 *   interceptors: [monitor({ slowQueryMs: 150 })],
 * });
 * const users = await sql`select * from users where id = ${1}`;
 * ```
 */
export function pilot<S extends Sql<any>, const I extends readonly Interceptor[] = []>(
  sql: S,
  options?: PilotOptions<I>,
): PilotSql<S, I>;
/**
 * Wrap several postgres.js instances as lanes; the first (or `options.primary`) is the primary.
 *
 * @example
 * ```ts
 * const sql = pilot({ primary: postgres(PRIMARY_URL), replica: postgres(REPLICA_URL) }, {
 *   interceptors: [affinity({ reads: "replica" })],
 * });
 * ```
 */
export function pilot<L extends Record<string, Sql<any>>, const I extends readonly Interceptor[] = []>(
  lanes: L,
  options?: PilotOptions<I>,
): PilotSql<L[keyof L], I>;
export function pilot(target: Sql<any> | Record<string, Sql<any>>, options?: PilotOptions): PilotSql<Sql<any>> {
  const config = parseOptions("pilot", OPTIONS, options);
  const lanes = createLanes(target, "primary");
  const primaryName = config.primary ?? lanes.keys().next().value!;
  if (!lanes.has(primaryName)) {
    throw new ConfigError("pilot", [{
      path: "primary",
      message: `no lane named "${primaryName}" (lanes: ${[...lanes.keys()].join(", ")})`,
    }]);
  }
  const primary = lanes.get(primaryName)!;
  const interceptors = config.interceptors;
  const scopes = scopeChecker(lanes.keys(), interceptors);
  const terminal = createTerminal(lanes, scopes.unknownLane);
  const chain = compose(interceptors, terminal.perform);
  const direct = interceptors.length === 0;
  let closed = false;
  let closing: Promise<void> | undefined;

  attachChain(interceptors, {
    name: config.name,
    lanes,
    primaryLane: primaryName,
    meterProvider: config.meterProvider,
    tracerProvider: config.tracerProvider,
  });

  const meters = bindMeters(config.name, config.meterProvider, interceptors.length > 0);
  const laneScopes = new Map<string, PilotSql<Sql<any>>>();
  const root = createRoot(undefined);
  return root;

  function run(op: Operation, settle: (value: unknown) => void, fail: (error: unknown) => void): void {
    if (op.scope?.signal === undefined && op.parent === undefined) {
      chain(op).then(settle, fail);
      return;
    }
    chain(op).then(
      (value) => (op.release(), settle(value)),
      (error) => (op.release(), fail(error)),
    );
  }

  // ---- the wrapped sql -------------------------------------------------------------------

  function laneOf(scope: CallScope | undefined, analysis: OperationAnalysis): string {
    if (scope?.lane !== undefined) return scope.lane;
    const hint = analysis.laneHint;
    return hint !== undefined && lanes.has(hint) ? hint : primaryName;
  }

  function analysisOf(query: RawQuery): OperationAnalysis {
    if (query.tagged) return analyzeTemplate(query.strings);
    return query.strings.length === 0 ? FILE_ANALYSIS : analyzeUnsafe(query.strings[0]!);
  }

  /**
   * A query has started (postgres.js called its handler): build its operation and run the
   * chain; the caller's promise settles with the chain's outcome.
   */
  function start(
    query: Tagged,
    analysis: OperationAnalysis,
    lane: string,
    parent: Operation | undefined,
    scope: CallScope | undefined,
    via: ((query: RawQuery) => void) | undefined,
    settled?: (error: unknown) => void,
  ): void {
    const op = new Operation("query", analysis, lane, parent, query, scope);
    op.via = query[VIA] ?? via;
    query[OPERATION] = op;
    let [settle, fail] = query.cursorFn === undefined ? [query.resolve, query.reject] : callerSettlement(query);
    if (settled !== undefined) {
      const [resolve, reject] = [settle, fail];
      settle = (value) => (settled(undefined), resolve(value));
      fail = (error) => (settled(error), reject(error));
    }
    run(op, settle, fail);
  }

  /** A query outside any transaction: its lane comes from the caller's scope or a comment hint. */
  function startQuery(query: Tagged, scope: CallScope | undefined): void {
    const analysis = analysisOf(query);
    start(query, analysis, laneOf(scope, analysis), undefined, scope, undefined);
  }

  /** `query.cancel()`: a queued operation leaves the chain; a sent one is cancelled on the server. */
  function cancel(query: RawQuery): Promise<void> {
    const op = (query as Tagged)[OPERATION];
    if (op === undefined) return primary.canceller(query);
    // Marked as the caller's abort, so the breaker does not count the server's 57014 against it.
    op.abort(cancelledError());
    return Promise.resolve();
  }

  function createRoot(scope: CallScope | undefined): PilotSql<Sql<any>> {
    const raw = primary.sql;
    const fastPath = direct && scope === undefined;
    const handler = fastPath
      ? (query: Tagged) => (query[VIA] ?? primary.handler)(query)
      : (query: Tagged) => startQuery(query, scope);

    const adopt = (query: Tagged): Tagged => {
      query.handler = handler as (query: RawQuery) => void;
      if (!fastPath) query.canceller = cancel;
      return query;
    };

    const wrapped = callable(raw, adopt) as PilotSql<Sql<any>>;
    const api = {
      unsafe: (...args: Parameters<Sql<any>["unsafe"]>) => adopt(raw.unsafe(...args) as unknown as Tagged),
      file: (...args: Parameters<Sql<any>["file"]>) => adopt(fileQuery(raw, args)),
      begin: (optionsOrFn: unknown, maybeFn?: unknown) => {
        const [mode, fn] = typeof optionsOrFn === "function"
          ? ["", optionsOrFn as (tx: unknown) => unknown]
          : [String(optionsOrFn ?? ""), maybeFn as (tx: unknown) => unknown];
        const op = new Operation("transaction", BEGIN_ANALYSIS, laneOf(scope, BEGIN_ANALYSIS), undefined, undefined, scope);
        op.task = (op) => lanes.get(op.lane)!.sql.begin(mode, (tx) => fn(wrapChild(tx, op)) as any);
        return new Promise((resolve, reject) => run(op, resolve, reject));
      },
      reserve: () =>
        new Promise((deliver, fail) => {
          const op = new Operation("reserve", RESERVE_ANALYSIS, laneOf(scope, RESERVE_ANALYSIS), undefined, undefined, scope);
          let delivered = false;
          op.task = (op) =>
            lanes.get(op.lane)!.sql.reserve().then((reserved) =>
              new Promise<void>((released) => {
                const child = wrapChild(reserved, op) as any;
                child.release = () => {
                  reserved.release();
                  released();
                };
                delivered = true;
                deliver(child);
              })
            );
          run(op, noop, (error) => (delivered ? reportHookError("reserve", error) : fail(error)));
        }),
      listen: (channel: string, onnotify: (value: string) => void, onlisten?: () => void) => {
        const op = new Operation("listen", LISTEN_ANALYSIS, laneOf(scope, LISTEN_ANALYSIS), undefined, undefined, scope);
        op.task = (op) => lanes.get(op.lane)!.sql.listen(channel, onnotify, onlisten);
        return new Promise((resolve, reject) => run(op, resolve, reject));
      },
      // An async function, as postgres.js's own: it runs at once, awaited or not.
      notify: async (channel: string, payload: string) => await wrapped`select pg_notify(${channel}, ${"" + payload})`,
      end: (options?: { timeout?: number }) => closeAll(options),
      close: (options?: { timeout?: number }) => closeAll({ timeout: options?.timeout ?? 5 }),
      stats: () => collectStats(config.name, primaryName, lanes, interceptors),
      health: () => combineHealth(interceptors, closed),
      with: (next: CallScope) => createRoot(scopes.with(scope, next)),
      lane: (name: string) => {
        let scoped = scope === undefined ? laneScopes.get(name) : undefined;
        if (scoped === undefined) {
          scoped = createRoot(scopes.check({ ...scope, lane: name }));
          if (scope === undefined) laneScopes.set(name, scoped);
        }
        return scoped;
      },
    };
    Object.assign(wrapped, api);
    // Everything else (options, types, array, json, typed, subscribe, CLOSE, PostgresError, …)
    // is postgres.js's own, found through the prototype so nothing is missed.
    Object.setPrototypeOf(wrapped, raw);
    markMeters(wrapped, meters);
    return wrapped;
  }

  /**
   * The `sql` a transaction callback or a reservation receives: its queries are child
   * operations of `parent` and go out through postgres.js's own handler for that connection.
   */
  function wrapChild(raw: any, parent: Operation): Sql<any> {
    let via: ((query: RawQuery) => void) | undefined;
    const handler = parent.kind === "reserve"
      ? reservationHandler(parent, () => via)
      : (query: Tagged) => start(query, analysisOf(query), parent.lane, parent, parent.scope, via);
    const adopt = (query: Tagged): Tagged => {
      // Every query of one transaction scope has the same postgres.js handler (its connection).
      if (query[VIA] === undefined) via ??= query.handler;
      query.handler = handler as (query: RawQuery) => void;
      query.canceller = cancel;
      return query;
    };
    // No prototype: `toString`, `constructor`, … must come from postgres.js's sql, not Object.
    const own: Record<string | symbol, unknown> = Object.create(null);
    own.unsafe = (...args: Parameters<Sql<any>["unsafe"]>) => adopt(raw.unsafe(...args) as Tagged);
    own.file = (...args: Parameters<Sql<any>["file"]>) => adopt(fileQuery(raw, args));
    const savepoint = (raw as { savepoint?: (name: unknown, fn?: unknown) => Promise<unknown> }).savepoint;
    if (savepoint !== undefined) {
      own.savepoint = (nameOrFn: unknown, maybeFn?: unknown) => {
        const [name, fn] = typeof nameOrFn === "function"
          ? [undefined, nameOrFn as (sql: unknown) => unknown]
          : [nameOrFn, maybeFn as (sql: unknown) => unknown];
        return savepoint(name, (inner: Sql<any>) => fn(wrapChild(inner, parent)));
      };
    }
    // Everything else is the transaction's own postgres.js sql. A proxy, not setPrototypeOf: a
    // new prototype per transaction cost ~8 µs on Node (V8 deoptimizes), the proxy ~0.2 µs.
    return new Proxy(callable(raw, adopt), {
      get: (_target, key) => (key in own ? own[key] : Reflect.get(raw, key)),
      has: (_target, key) => key in own || key in raw,
      // What callers add (reserve()'s release) shadows postgres.js's own.
      set: (_target, key, value) => ((own[key] = value), true),
    }) as unknown as Sql<any>;
  }

  /**
   * Queries on a reservation: each a child of the reservation (or of the transaction the
   * application opened on it with `BEGIN`), judged on its own by deadline and breaker.
   */
  function reservationHandler(reservation: Operation, via: () => ((query: RawQuery) => void) | undefined) {
    let transaction: ManualTransaction | undefined;
    return (query: Tagged): void => {
      const analysis = analysisOf(query);
      const boundary = transactionBoundary(analysis);
      if (boundary === "begin" && transaction === undefined) {
        transaction = new ManualTransaction(reservation);
        run(transaction.op, noop, noop);
      }
      const current = transaction;
      if (current === undefined) {
        start(query, analysis, reservation.lane, reservation, reservation.scope, via());
        return;
      }
      if (boundary === "commit" || boundary === "rollback") transaction = undefined;
      start(query, analysis, reservation.lane, current.op, reservation.scope, via(), (error) => {
        if (boundary === "commit" || boundary === "rollback") current.end(boundary === "commit" ? error : undefined);
        else if (error !== undefined) current.failed(error);
      });
    };
  }

  function closeAll(options?: { timeout?: number }): Promise<void> {
    closed = true;
    releaseMeters(meters);
    return (closing ??= closeChain(interceptors, lanes, options).finally(() => detachChain(interceptors)));
  }
}
