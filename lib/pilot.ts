/**
 * `pilot()`: wraps postgres.js in the interceptor chain and returns a drop-in `sql`.
 *
 * How it stays drop-in: the caller gets postgres.js's own `Query` objects. pgpilot only swaps
 * the query's `handler`, so the chain runs when postgres.js would have started the query —
 * exactly once, however often it is awaited — and fragments, which are never started, are
 * never operations. See lib/internals.ts for the fields involved.
 *
 * @module
 */
import type { Sql } from "postgres";
import * as v from "valibot";
import { markUnreachable } from "./classify.ts";
import { compose } from "./compose.ts";
import { parseOptions } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { combineHealth, type PilotHealth } from "./health.ts";
import type { Interceptor, LaneInfo, PilotContext } from "./interceptor.ts";
import { callerSettlement, cancelledError, captureSettlement, type RawQuery } from "./internals.ts";
import { createLanes, type Lane } from "./lanes.ts";
import { type CallScope, NO_SQL, Operation, type OperationAnalysis } from "./operation.ts";
import { analyzeTemplate, analyzeUnsafe } from "./sql/cache.ts";
import { reportHookError } from "./telemetry/diag.ts";

/** Options of `pilot()`. */
export interface PilotOptions {
  /** Pool name, the `db.client.connection.pool.name` attribute. Default `"default"`. */
  name?: string;
  /** The chain, outermost first. */
  interceptors?: Interceptor[];
  /** Which lane is the primary (writes, transactions). Default: the first lane. */
  primary?: string;
}

/** What `pilot()` adds to a postgres.js `sql`. */
export interface PilotApi<S> {
  /** JSON snapshot: pool name, lanes, and each interceptor's section. */
  stats(): PilotStats;
  /** Combined health: the worst vote of the interceptors. */
  health(): PilotHealth;
  /**
   * Stop the interceptors' timers and end every lane. Always settles within `timeout`
   * seconds (default 5) plus one second, even when postgres.js's own `end()` would hang.
   */
  close(options?: { timeout?: number }): Promise<void>;
  /** A `sql` whose operations carry these options (lane, abort signal, time budget). */
  with(scope: CallScope): PilotSql<S>;
  /** A `sql` whose operations go to the named lane. */
  lane(name: string): PilotSql<S>;
}

/** A postgres.js `sql` with pgpilot's additions. */
export type PilotSql<S> = S & PilotApi<S>;

/** `sql.stats()`: the pool, the lanes, and one section per interceptor that has stats. */
export interface PilotStats {
  name: string;
  primaryLane: string;
  lanes: Record<string, { max: number; host: string; port: number; database: string }>;
  [interceptor: string]: unknown;
}

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
});

const SCOPE = v.strictObject({
  lane: v.optional(v.string()),
  signal: v.optional(v.instance(AbortSignal)),
  timeoutMs: v.optional(v.pipe(v.number(), v.finite(), v.gtValue(0))),
});

const FILE_ANALYSIS = NO_SQL("UNKNOWN");
const BEGIN_ANALYSIS = NO_SQL("BEGIN");
const RESERVE_ANALYSIS = NO_SQL("RESERVE");
const LISTEN_ANALYSIS = NO_SQL("LISTEN");
const OPERATION = Symbol("pgpilot.operation");
const VIA = Symbol("pgpilot.via");
const noop = (): void => {};

type Tagged = RawQuery & { [OPERATION]?: Operation; [VIA]?: (query: RawQuery) => void };

/**
 * A function that behaves as postgres.js's `sql`: queries it creates are adopted (their handler
 * swapped), fragments and helpers (`sql(obj)`, `sql("name")`) are returned untouched.
 */
function callable(raw: (...args: any[]) => unknown, adopt: (query: Tagged) => Tagged): (...args: unknown[]) => unknown {
  return function sql(strings: unknown) {
    const result = Reflect.apply(raw, undefined, arguments);
    return strings !== null && typeof strings === "object" && Array.isArray((strings as { raw?: unknown }).raw)
      ? adopt(result as Tagged)
      : result;
  };
}

/** Wait for `promise`, at most `ms`. */
async function raceTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** `file()` reads the file inside its own handler, then hands the query on: keep that step. */
function fileQuery(raw: Sql<any>, args: Parameters<Sql<any>["file"]>): Tagged {
  const query = (raw.file as (...a: unknown[]) => unknown)(...args) as Tagged;
  query[VIA] = query.handler;
  return query;
}

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
export function pilot<S extends Sql<any>>(sql: S, options?: PilotOptions): PilotSql<S>;
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
export function pilot<L extends Record<string, Sql<any>>>(lanes: L, options?: PilotOptions): PilotSql<L[keyof L]>;
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
  const chain = compose(interceptors, perform);
  const direct = interceptors.length === 0;
  let closed = false;
  let closing: Promise<void> | undefined;

  const context: PilotContext = {
    name: config.name,
    lanes: lanes as ReadonlyMap<string, LaneInfo>,
    primaryLane: primaryName,
    interceptors: new Map(interceptors.map((interceptor) => [interceptor.name, interceptor])),
  };
  for (const interceptor of interceptors) interceptor.attach?.(context);

  const laneScopes = new Map<string, PilotSql<Sql<any>>>();
  const root = createRoot(undefined);
  return root;

  // ---- the terminal step: what runs after the last interceptor --------------------------

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
      const query = op.attempt > 1 ? recreate(original, lane) : original;
      op.current = query;
      op.cancelSent = cancelSent;
      captureSettlement(query, resolve, (error) => {
        // A server error for a query postgres.js never wrote to a connection came while the
        // connection was being established (wrong database, role, password): the lane, not
        // the statement, is at fault.
        if (!(query as { state?: unknown }).state) markUnreachable(error);
        reject(error);
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

  /**
   * A query not yet written may instead be the one a connection is connecting for (waiting out
   * the reconnect backoff). postgres.js 3.4.9 marks it cancelled, and when that connection is
   * up it skips the query and never hands the connection back to the pool: one connection
   * lost for good per cancelled query — after an outage with deadlines, the whole pool, every
   * later call waiting until its deadline. So the orphan (its caller already has its error,
   * and its settlement is pilot's, already ignored) becomes a harmless `select 1` that runs
   * normally and lets the connection join the pool. A query still in the pool's queue was
   * removed from it and is never run.
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
  function recreate(query: RawQuery, lane: Lane): RawQuery {
    const copy = (query.tagged
      ? (lane.sql as any)(query.strings, ...query.args)
      : lane.sql.unsafe(query.strings[0]!, query.args as any[], { ...query.options })) as unknown as RawQuery;
    Object.assign(copy.options, query.options);
    copy.isRaw = query.isRaw;
    copy.executed = true;
    return copy;
  }

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
  ): void {
    const op = new Operation("query", analysis, lane, parent, query, scope);
    op.via = query[VIA] ?? via;
    query[OPERATION] = op;
    if (query.cursorFn === undefined) run(op, query.resolve, query.reject);
    else {
      const [settle, fail] = callerSettlement(query);
      run(op, settle, fail);
    }
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
        const op = new Operation("query", LISTEN_ANALYSIS, laneOf(scope, LISTEN_ANALYSIS), undefined, undefined, scope);
        op.task = (op) => lanes.get(op.lane)!.sql.listen(channel, onnotify, onlisten);
        return new Promise((resolve, reject) => run(op, resolve, reject));
      },
      notify: (channel: string, payload: string) => wrapped`select pg_notify(${channel}, ${"" + payload})`,
      end: (options?: { timeout?: number }) => closeAll(options),
      close: (options?: { timeout?: number }) => closeAll({ timeout: options?.timeout ?? 5 }),
      stats: () => collectStats(),
      health: () => combineHealth(interceptors, closed),
      with: (next: CallScope) => createRoot(checkScope({ ...scope, ...parseOptions("sql.with", SCOPE, next) })),
      lane: (name: string) => {
        let scoped = scope === undefined ? laneScopes.get(name) : undefined;
        if (scoped === undefined) {
          scoped = createRoot(checkScope({ ...scope, lane: name }));
          if (scope === undefined) laneScopes.set(name, scoped);
        }
        return scoped;
      },
    };
    Object.assign(wrapped, api);
    // Everything else (options, types, array, json, typed, subscribe, CLOSE, PostgresError, …)
    // is postgres.js's own, found through the prototype so nothing is missed.
    Object.setPrototypeOf(wrapped, raw);
    return wrapped;
  }

  /**
   * The `sql` a transaction callback or a reservation receives: its queries are child
   * operations of `parent` and go out through postgres.js's own handler for that connection.
   */
  function wrapChild(raw: any, parent: Operation): Sql<any> {
    let via: ((query: RawQuery) => void) | undefined;
    const handler = (query: Tagged) => start(query, analysisOf(query), parent.lane, parent, parent.scope, via);
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

  function checkScope(scope: CallScope): CallScope {
    if (scope.lane !== undefined && !lanes.has(scope.lane)) throw unknownLane(scope.lane);
    return scope;
  }

  function unknownLane(name: string): ConfigError {
    return new ConfigError("pilot", [{
      path: "lane",
      message: `no lane named "${name}" (lanes: ${[...lanes.keys()].join(", ")})`,
    }]);
  }

  function collectStats(): PilotStats {
    const stats: PilotStats = { name: config.name, primaryLane: primaryName, lanes: {} };
    for (const lane of lanes.values()) {
      stats.lanes[lane.name] = { max: lane.max, host: lane.host, port: lane.port, database: lane.database };
    }
    for (const interceptor of interceptors) {
      if (interceptor.stats === undefined) continue;
      try {
        stats[interceptor.name] = interceptor.stats();
      } catch (error) {
        reportHookError(`${interceptor.name}.stats`, error);
      }
    }
    return stats;
  }

  function closeAll(options?: { timeout?: number }): Promise<void> {
    closed = true;
    return (closing ??= (async () => {
      // An interceptor may wait for work in flight (adaptive() for its reserved connections):
      // with a timeout, no longer than it.
      const closed = Promise.allSettled(interceptors.map((interceptor) => interceptor.close?.()));
      const timeout = options?.timeout;
      if (timeout === undefined || timeout === null) {
        await closed;
        await Promise.allSettled([...lanes.values()].map((lane) => lane.sql.end(options)));
        return;
      }
      // One budget for the whole close: what the interceptors used is taken from the lanes'
      // end(), so close() settles within `timeout` + 1 s in every state.
      const started = performance.now();
      await raceTimeout(closed, timeout * 1000);
      const left = Math.max(0, timeout * 1000 - (performance.now() - started));
      const ended = Promise.allSettled([...lanes.values()].map((lane) => lane.sql.end({ timeout: left / 1000 })));
      // postgres.js's end() can hang after a connection reset; never let close() hang with it.
      await raceTimeout(ended, left + 1000);
    })());
  }
}
