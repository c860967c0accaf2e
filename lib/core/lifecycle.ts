/**
 * A pilot's `stats()` and `close()`: collected from and forwarded to its interceptors and lanes.
 *
 * @module
 */
import { reportHookError } from "../shared/diag.ts";
import type { Interceptor } from "./interceptor.ts";
import type { Lane } from "./lanes.ts";

/** `sql.stats()`: the pool, the lanes, and one section per interceptor that has stats. */
export interface PilotStats {
  name: string;
  primaryLane: string;
  lanes: Record<string, { max: number; host: string; port: number; database: string }>;
  [interceptor: string]: unknown;
}

/**
 * The pilot's stats: its lanes and every interceptor's section (a throwing `stats()` is reported
 * through OTel `diag` and left out), with long fractions rounded for humans (see `forHumans`).
 *
 * @example
 * ```ts
 * collectStats("main", "primary", lanes, interceptors).lanes.primary.max; // 10
 * ```
 */
export function collectStats(
  name: string,
  primaryLane: string,
  lanes: ReadonlyMap<string, Lane>,
  interceptors: readonly Interceptor[],
): PilotStats {
  const stats: PilotStats = { name, primaryLane, lanes: {} };
  for (const lane of lanes.values()) {
    stats.lanes[lane.name] = { max: lane.max, host: lane.host, port: lane.port, database: lane.database };
  }
  for (const interceptor of interceptors) {
    if (interceptor.stats === undefined) continue;
    try {
      stats[interceptor.name] = forHumans(interceptor.stats());
    } catch (error) {
      reportHookError(`${interceptor.name}.stats`, error);
    }
  }
  return stats;
}

/**
 * `value` with every non-integer number rounded for a human reader: 3 decimals from 1 up
 * (`305.7911649178464` → `305.791`), 3 significant digits below (`0.27197558` → `0.272`,
 * `0.000123456` → `0.000123`). Plain objects and arrays are copied, anything else is kept as is.
 *
 * @example
 * ```ts
 * forHumans({ arrivalRate: 305.7911649178464, load: [0.27197558293289814] }); // { arrivalRate: 305.791, load: [0.272] }
 * ```
 */
export function forHumans<T>(value: T, depth = 0): T {
  if (typeof value === "number") {
    if (Number.isInteger(value) || !Number.isFinite(value)) return value;
    return (Math.abs(value) >= 1 ? Math.round(value * 1000) / 1000 : Number(value.toPrecision(3))) as T;
  }
  if (typeof value !== "object" || value === null || depth > 16) return value;
  if (Array.isArray(value)) return value.map((item) => forHumans(item, depth + 1)) as T;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[key] = forHumans(item, depth + 1);
  return copy as T;
}

/** Wait for `promise`, at most `ms`. */
async function raceTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * Close the interceptors, then end every lane. With a `timeout` (seconds) the whole close
 * settles within `timeout` + 1 s, even when an interceptor's close or postgres.js's own `end()`
 * would hang: the time the interceptors took is taken from the lanes' `end()` timeout.
 *
 * @example
 * ```ts
 * await closeChain(interceptors, lanes, { timeout: 5 });
 * ```
 */
export async function closeChain(
  interceptors: readonly Interceptor[],
  lanes: ReadonlyMap<string, Lane>,
  options: { timeout?: number } | undefined,
): Promise<void> {
  const timeout = options?.timeout;
  // An interceptor may wait for work in flight (adaptive() for its reserved connections):
  // with a timeout, no longer than it.
  const closed = Promise.allSettled(interceptors.map((interceptor) => interceptor.close?.()));
  if (timeout === undefined || timeout === null) {
    await closed;
    await Promise.allSettled([...lanes.values()].map((lane) => lane.sql.end(options)));
    return;
  }
  const started = performance.now();
  await raceTimeout(closed, timeout * 1000);
  const left = Math.max(0, timeout * 1000 - (performance.now() - started));
  const ended = Promise.allSettled([...lanes.values()].map((lane) => lane.sql.end({ timeout: left / 1000 })));
  // postgres.js's end() can hang after a connection reset; never let close() hang with it.
  await raceTimeout(ended, left + 1000);
}
