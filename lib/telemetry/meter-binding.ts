/**
 * Which meter provider a pilot's interceptors took their meters from. The OTel metrics API has
 * no proxy provider: a pilot created before any SDK was registered holds no-op meters for good.
 * `pgpilot/prometheus` reads this to refuse (or warn about) that order instead of serving a
 * `/metrics` without pgpilot's metrics.
 *
 * @module
 */
import { createNoopMeter, diag, type MeterProvider, metrics } from "@opentelemetry/api";
import { ConfigError } from "../shared/errors.ts";

/** What a pilot's interceptors took their meters from, when it was created. */
export interface MeterBinding {
  /** The pilot's name. */
  readonly pilot: string;
  /** `meterProvider` given to `pilot()`, else the global provider at that moment. */
  readonly provider: MeterProvider;
  /** True when that was the API's no-op provider (no SDK registered yet, none given). */
  readonly noop: boolean;
}

// Symbol.for: two copies of pgpilot (a bundle and a dependency) agree on it.
const BINDING = Symbol.for("pgpilot.meterBinding");
/** Open pilots whose interceptors took no-op meters. */
const unbound = new Set<MeterBinding>();

/**
 * True for the OpenTelemetry API's no-op provider (what `metrics.getMeterProvider()` returns
 * before an SDK is registered).
 *
 * @example
 * ```ts
 * isNoopMeterProvider(metrics.getMeterProvider()); // true until an SDK registers itself
 * ```
 */
export function isNoopMeterProvider(provider: MeterProvider): boolean {
  return provider.getMeter("pgpilot") === createNoopMeter();
}

/**
 * Record what the interceptors of a new pilot take their meters from (call when attaching).
 *
 * @example
 * ```ts
 * const binding = bindMeters("main", options.meterProvider, interceptors.length > 0);
 * ```
 */
export function bindMeters(pilot: string, given: MeterProvider | undefined, metered: boolean): MeterBinding {
  const provider = given ?? metrics.getMeterProvider();
  const binding = { pilot, provider, noop: isNoopMeterProvider(provider) };
  if (binding.noop && metered) unbound.add(binding);
  return binding;
}

/**
 * Forget a closed pilot.
 *
 * @example
 * ```ts
 * releaseMeters(binding); // in close()
 * ```
 */
export function releaseMeters(binding: MeterBinding): void {
  unbound.delete(binding);
}

/**
 * Mark a pilot's `sql` with its binding (a non-enumerable symbol property).
 *
 * @example
 * ```ts
 * markMeters(wrapped, binding);
 * ```
 */
export function markMeters(sql: object, binding: MeterBinding): void {
  Object.defineProperty(sql, BINDING, { value: binding, configurable: true });
}

/**
 * The binding of a pilot's `sql`, or undefined for anything else.
 *
 * @example
 * ```ts
 * if (meterBindingOf(sql)?.noop) throw new Error("pilot() ran before the metrics SDK was registered");
 * ```
 */
export function meterBindingOf(sql: unknown): MeterBinding | undefined {
  if ((typeof sql !== "function" && typeof sql !== "object") || sql === null) return undefined;
  return (sql as { [BINDING]?: MeterBinding })[BINDING];
}

/**
 * Names of the open pilots (with interceptors) whose meters are no-ops: created before any
 * meter provider was registered and without `meterProvider`.
 *
 * @example
 * ```ts
 * pilotsWithoutMeters(); // ["main"] when pilot() ran before servePrometheus()
 * ```
 */
export function pilotsWithoutMeters(): string[] {
  return [...unbound].map((binding) => binding.pilot);
}

/**
 * Throw a `ConfigError` when `source` is a pilot whose interceptors took no-op meters: a metrics
 * server created after it would serve none of its metrics.
 *
 * @example
 * ```ts
 * refuseMeterlessPilot("servePrometheus", options.health); // before starting anything
 * ```
 */
export function refuseMeterlessPilot(where: string, source: unknown, path = "health"): void {
  const binding = meterBindingOf(source);
  if (binding === undefined || !binding.noop) return;
  throw new ConfigError(where, [{
    path,
    message: `pilot "${binding.pilot}" was created before ${where}() and before any meter provider was registered, ` +
      `so its interceptors hold no-op meters and /metrics would have none of its metrics. ` +
      `Call ${where}() first, create the pilot, then hand it over with server.serveHealth(sql) ` +
      `(or give the pilot meterProvider: server.meterProvider)`,
  }]);
}

/**
 * Warn (console and OTel `diag`) when pilots with no-op meters are open as a new provider is
 * registered globally: their metrics will not reach it.
 *
 * @example
 * ```ts
 * if (metrics.setGlobalMeterProvider(provider)) warnAboutMeterlessPilots("servePrometheus");
 * ```
 */
export function warnAboutMeterlessPilots(where: string): void {
  const names = [...new Set(pilotsWithoutMeters())].map((name) => `"${name}"`);
  if (names.length === 0) return;
  const which = names.length === 1 ? `pilot ${names[0]} was` : `pilots ${names.join(", ")} were`;
  const message = `pgpilot: ${where}() registered its meter provider after ${which} created with no meter ` +
    `provider: their interceptors keep no-op meters, so their metrics will be missing. ` +
    `Call ${where}() before pilot(), or pass meterProvider to pilot().`;
  diag.warn(message);
  console.warn(message);
}
