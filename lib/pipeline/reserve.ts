/**
 * A bounded `sql.reserve()` for the pipeline.
 *
 * @module
 */
import type { ReservedSql } from "postgres";

/**
 * How long a reservation may take before the pipeline gives up on it (ms). postgres.js 3.4 can
 * drop a `reserve()` request: when a connection closes while the request waits in the pool's
 * queue, the connection is reopened with it as its first query, and the type fetch that follows
 * forgets it. The promise then never settles; without a bound the pipeline would count it as
 * under way forever (and `close()` would wait for it).
 */
export const RESERVE_TIMEOUT_MS = 5_000;

/** `reserve()`, rejected after `ms`; a reservation that arrives later is given back at once. */
export function reserveWithin(reserve: () => Promise<ReservedSql<any>>, ms: number): Promise<ReservedSql<any>> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(Object.assign(new Error(`no connection reserved within ${ms} ms`), { code: "RESERVE_TIMEOUT" }));
    }, ms);
    (timer as { unref?: () => void }).unref?.();
    reserve().then(
      (sql) => {
        if (late) return sql.release();
        clearTimeout(timer);
        resolve(sql);
      },
      (error) => {
        clearTimeout(timer);
        if (!late) reject(error);
      },
    );
  });
}
