/**
 * The surface of a wrapped `sql`: a callable that adopts the queries postgres.js creates (swaps
 * their handler) and leaves fragments alone, and the tags pilot puts on adopted queries.
 *
 * @module
 */
import type { Sql } from "postgres";
import type { Operation } from "./operation.ts";
import type { RawQuery } from "./postgres-internals.ts";

export const OPERATION: unique symbol = Symbol("pgpilot.operation");
export const VIA: unique symbol = Symbol("pgpilot.via");

/** A postgres.js query as pilot tags it: its operation, and the send `file()` needs. */
export type Tagged = RawQuery & { [OPERATION]?: Operation; [VIA]?: (query: RawQuery) => void };

/**
 * A function that behaves as postgres.js's `sql`: queries it creates are adopted (their handler
 * swapped), fragments and helpers (`sql(obj)`, `sql("name")`) are returned untouched.
 */
export function callable(raw: (...args: any[]) => unknown, adopt: (query: Tagged) => Tagged): (...args: unknown[]) => unknown {
  return function sql(strings: unknown) {
    const result = Reflect.apply(raw, undefined, arguments);
    return strings !== null && typeof strings === "object" && Array.isArray((strings as { raw?: unknown }).raw)
      ? adopt(result as Tagged)
      : result;
  };
}

/** `file()` reads the file inside its own handler, then hands the query on: keep that step. */
export function fileQuery(raw: Sql<any>, args: Parameters<Sql<any>["file"]>): Tagged {
  const query = (raw.file as (...a: unknown[]) => unknown)(...args) as Tagged;
  query[VIA] = query.handler;
  return query;
}
