/**
 * The types of what `pilot()` takes and returns: its options, the `sql` it hands back and the
 * typed sections of `sql.stats()`.
 *
 * @module
 */
import type { MeterProvider, TracerProvider } from "@opentelemetry/api";
import type { PilotHealth } from "./health.ts";
import type { Interceptor } from "./interceptor.ts";
import type { PilotStats } from "./lifecycle.ts";
import type { CallScope } from "./operation.ts";

/** Options of `pilot()`; `I` is the tuple of interceptors (it types `stats()`). */
export interface PilotOptions<I extends readonly Interceptor[] = readonly Interceptor[]> {
  /** Pool name, the `db.client.connection.pool.name` attribute. Default `"default"`. */
  name?: string;
  /** The chain, outermost first. */
  interceptors?: I;
  /** Which lane is the primary (writes, transactions). Default: the first lane. */
  primary?: string;
  /**
   * Where every interceptor's metrics go (an interceptor's own `meterProvider` wins).
   * Default: the global OpenTelemetry meter provider.
   */
  meterProvider?: MeterProvider;
  /** Where `tracing()`'s spans go (its own `tracerProvider` wins). Default: the global one. */
  tracerProvider?: TracerProvider;
}

/** What `pilot()` adds to a postgres.js `sql`. */
export interface PilotApi<S, I extends readonly Interceptor[] = readonly Interceptor[]> {
  /** JSON snapshot: pool name, lanes, and each interceptor's section (typed by the interceptors given). */
  stats(): PilotStats & StatsSections<I>;
  /** Combined health: the worst vote of the interceptors. */
  health(): PilotHealth;
  /**
   * Stop the interceptors' timers and end every lane. Always settles within `timeout`
   * seconds (default 5) plus one second, even when postgres.js's own `end()` would hang.
   */
  close(options?: { timeout?: number }): Promise<void>;
  /** A `sql` whose operations carry these options (lane, abort signal, time budget). */
  with(scope: CallScope): PilotSql<S, I>;
  /** A `sql` whose operations go to the named lane. */
  lane(name: string): PilotSql<S, I>;
}

/** A postgres.js `sql` with pgpilot's additions. */
export type PilotSql<S, I extends readonly Interceptor[] = readonly Interceptor[]> = S & PilotApi<S, I>;

/**
 * The typed sections of `sql.stats()`: one per interceptor whose name is a literal type and that
 * has `stats()` — `sql.stats().monitor` is `MonitorStats` when `monitor()` is in the chain.
 */
export type StatsSections<I extends readonly Interceptor[]> = {
  [K in I[number] as string extends K["name"] ? never : K extends { stats(): unknown } ? K["name"] : never]: K extends
    { stats(): infer R } ? R : never;
};
