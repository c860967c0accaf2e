/**
 * Lanes: the postgres.js instances behind one pgpilot `sql`.
 *
 * @module
 */
import postgres, { type Sql } from "postgres";
import { markUnreachable } from "../shared/classify.ts";
import { isPlainObject } from "../shared/config.ts";
import { ConfigError, PilotError } from "../shared/errors.ts";
import type { LaneInfo } from "./interceptor.ts";
import type { RawQuery } from "./postgres-internals.ts";

/** A lane as pilot uses it internally: the instance plus its pool's handler and canceller. */
export interface Lane extends LaneInfo {
  readonly sql: Sql<any>;
  /** postgres.js's pool handler: hands a query to a connection (or its queue). */
  readonly handler: (query: RawQuery) => void;
  /** postgres.js's canceller for this pool. */
  readonly canceller: (query: RawQuery) => Promise<void>;
}

/**
 * True for a postgres.js `sql` instance (as opposed to an object of lanes).
 *
 * @example
 * ```ts
 * isSql(postgres(url)); // true
 * isSql({ primary: postgres(url) }); // false
 * ```
 */
export function isSql(value: unknown): value is Sql<any> {
  return typeof value === "function" && typeof (value as Sql<any>).unsafe === "function" &&
    typeof (value as Sql<any>).begin === "function";
}

/**
 * Build the lanes from one instance or an object of them. The pool handler and canceller
 * come from a query that is created and never run: postgres.js hands them to every query.
 */
export function createLanes(target: Sql<any> | Record<string, Sql<any>>, defaultName: string): Map<string, Lane> {
  if (!isSql(target) && !isPlainObject(target)) {
    const got = target === null ? "null" : Array.isArray(target) ? "an array" : typeof target;
    throw new ConfigError("pilot", [{
      path: "sql",
      message: `the first argument must be a postgres.js sql or an object of them ({ primary: sql, … }), got ${got}`,
    }]);
  }
  const entries: [string, Sql<any>][] = isSql(target) ? [[defaultName, target]] : Object.entries(target);
  if (entries.length === 0) throw new ConfigError("pilot", [{ path: "lanes", message: "at least one lane is required" }]);
  const lanes = new Map<string, Lane>();
  for (const [name, sql] of entries) {
    if (!isSql(sql)) {
      throw new ConfigError("pilot", [{ path: `lanes.${name}`, message: "must be a postgres.js sql instance" }]);
    }
    lanes.set(name, createLane(name, sql));
  }
  return lanes;
}

/** pilot's own lanes, by the `LaneInfo` interceptors see. */
const pilotLanes = new WeakMap<LaneInfo, Lane>();

/**
 * The lane's pool handler, which hands a query to one of its connections (or its queue) —
 * for a `LaneInfo` pilot created; `undefined` for hand-made ones (tests).
 *
 * @example
 * ```ts
 * const fallback = poolSendOf(context.lanes.get("primary")!);
 * ```
 */
export function poolSendOf(info: LaneInfo): ((query: RawQuery) => void) | undefined {
  return pilotLanes.get(info)?.handler;
}

function createLane(name: string, sql: Sql<any>): Lane {
  const unstarted = sql.unsafe("") as unknown as RawQuery;
  const options = sql.options as unknown as { host: string[]; port: number[]; database: string; max: number };
  const lane: Lane = {
    name,
    sql,
    handler: unstarted.handler,
    canceller: unstarted.canceller!,
    max: options.max,
    host: options.host?.[0] ?? "localhost",
    port: options.port?.[0] ?? 5432,
    database: options.database ?? "",
    probe: async () => {
      await sql.unsafe("select 1");
    },
    ping: (timeoutMs) => ping(sql, timeoutMs),
    reserve: () => sql.reserve(),
  };
  pilotLanes.set(lane, lane);
  return lane;
}

/**
 * `select 1` on a connection of its own: a short-lived postgres.js instance (`max: 1`) built
 * from the lane's options, ended right after. It tests the database as the lane would reach it
 * (hosts, user, password, database, TLS, startup parameters) without going through the lane's
 * pool, whose connections may be waiting out postgres.js's reconnect backoff or be unable to
 * write after a server restart (porsager/postgres#1208), and without feeding that backoff: the
 * instance has its own retry count. Its failure is marked as a failure to reach the database
 * (see `markUnreachable`): a `select 1` on a fresh connection fails only when the connection does.
 */
async function ping(sql: Sql<any>, timeoutMs: number): Promise<void> {
  const options = sql.options as unknown as Record<string, unknown>;
  const { shared: _shared, serializers: _s, parsers: _p, ...rest } = options;
  const fresh = postgres({
    ...rest,
    max: 1,
    idle_timeout: 0,
    max_lifetime: null,
    connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
    fetch_types: false,
    onnotice: () => {},
    onnotify: undefined,
    onparameter: undefined,
    onclose: undefined,
    debug: false,
  } as any);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      fresh.unsafe("select 1", [], { prepare: false }),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new PilotError("DEADLINE_EXCEEDED", `probe: no answer within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (error) {
    throw markUnreachable(error);
  } finally {
    clearTimeout(timer);
    // Ends at once; a query still waiting for a black hole is destroyed with its connection.
    void fresh.end({ timeout: 0 }).catch(() => {});
  }
}
