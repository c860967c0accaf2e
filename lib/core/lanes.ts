/**
 * Lanes: the postgres.js instances behind one pgpilot `sql`.
 *
 * @module
 */
import type { Sql } from "postgres";
import { ConfigError } from "../shared/errors.ts";
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
    reserve: () => sql.reserve(),
  };
  pilotLanes.set(lane, lane);
  return lane;
}
