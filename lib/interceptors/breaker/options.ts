/**
 * `breaker()` options: the valibot schema, its defaults and the
 * parsed shape.
 *
 * @module
 */
import type { MeterProvider } from "@opentelemetry/api";
import * as v from "valibot";
import { boundedInteger, durationMs, integerAtLeast, parseOptions, METER_PROVIDER } from "../../shared/config.ts";
import { ConfigError } from "../../shared/errors.ts";
import type { CircuitOptions, CircuitSnapshot } from "./circuit.ts";
import type { CountedCategory } from "../../shared/failure-window.ts";

/** Options of `breaker()`. Every field is optional. */
export interface BreakerOptions {
  /**
   * Failures of a category within `windowMs` that open a lane's circuit. Defaults:
   * `connection` 5, `timeout` 8, `transaction` 7, `resource` 15 (docs/origins.md says where they come from). Each 1 to 1 000 000.
   */
  thresholds?: Partial<Record<CountedCategory, number>>;
  /** Length of the sliding window the thresholds and the failure rate look at, 10 ms to 2^31−1 ms. Default 30 000 ms. */
  windowMs?: number;
  /** Failures / calls in the window that open the circuit, 0 < rate ≤ 1. Default 0.5. */
  failureRate?: number;
  /** Calls the window must hold before `failureRate` applies, 1 to 1 000 000. Default 20. */
  minimumVolume?: number;
  /** Wait after opening before probing, 1 ms to 2^31−1 ms (what a timer can hold). Default 10 000 ms. */
  recoveryMs?: number;
  /** Cap of the exponential wait after repeated opens, ≥ `recoveryMs`, at most 2^31−1 ms. Default max(120 000, recoveryMs). */
  maxRecoveryMs?: number;
  /** Probes admitted while half-open; this many successes close it, 1 to 1000. Default 2. */
  halfOpenRequests?: number;
  /** Run `select 1` on the lane when the recovery time has passed, so user calls need not be the probe. Default true. */
  activeProbing?: boolean;
  /** A probe that has not answered after this long counts as a timeout, 1 ms to 2^31−1 ms. Default 5 000 ms. */
  probeTimeoutMs?: number;
  /** State to start from, by lane (what `toJSON()` returned earlier). */
  initialState?: Record<string, CircuitSnapshot>;
  /** Meter provider (default: the global one, taken when `pilot()` attaches the breaker). */
  meterProvider?: MeterProvider;
}

const CATEGORY = v.picklist(["connection", "timeout", "transaction", "resource"]);

const SNAPSHOT = v.variant("state", [
  v.strictObject({ state: v.literal("closed") }),
  v.strictObject({ state: v.literal("open"), category: CATEGORY, until: v.pipe(v.number(), v.finite()), opens: integerAtLeast(1) }),
  v.strictObject({ state: v.literal("half-open"), category: CATEGORY, opens: integerAtLeast(1) }),
]);

const THRESHOLD = boundedInteger(1, 1_000_000);

const SCHEMA = v.strictObject({
  thresholds: v.optional(
    v.strictObject({
      connection: v.optional(THRESHOLD, 5),
      timeout: v.optional(THRESHOLD, 8),
      transaction: v.optional(THRESHOLD, 7),
      resource: v.optional(THRESHOLD, 15),
    }),
    {},
  ),
  windowMs: v.optional(durationMs(10), 30_000),
  failureRate: v.optional(v.pipe(v.number(), v.finite(), v.gtValue(0), v.maxValue(1)), 0.5),
  minimumVolume: v.optional(boundedInteger(1, 1_000_000), 20),
  recoveryMs: v.optional(durationMs(1), 10_000),
  maxRecoveryMs: v.optional(durationMs(1)),
  halfOpenRequests: v.optional(boundedInteger(1, 1000), 2),
  activeProbing: v.optional(v.boolean(), true),
  probeTimeoutMs: v.optional(durationMs(1), 5_000),
  initialState: v.optional(v.record(v.string(), SNAPSHOT)),
  meterProvider: v.optional(METER_PROVIDER),
});

/** `breaker()` options after validation and defaults. */
export interface BreakerConfig extends CircuitOptions {
  readonly activeProbing: boolean;
  readonly probeTimeoutMs: number;
  readonly initialState: Readonly<Record<string, CircuitSnapshot>>;
  readonly meterProvider: MeterProvider | undefined;
}

/**
 * Validate `breaker()` options and apply the defaults; throws `ConfigError` naming each bad field.
 *
 * @example
 * ```ts
 * parseBreakerOptions({ recoveryMs: 30_000 }).thresholds.connection; // 5
 * parseBreakerOptions({ halfOpenRequests: 0 }); // ConfigError: breaker: halfOpenRequests: …
 * ```
 */
export function parseBreakerOptions(input: BreakerOptions | undefined): BreakerConfig {
  const options = parseOptions("breaker", SCHEMA, input);
  if (options.maxRecoveryMs !== undefined && options.maxRecoveryMs < options.recoveryMs) {
    throw new ConfigError("breaker", [{
      path: "maxRecoveryMs",
      message: `must be >= recoveryMs (${options.recoveryMs}), got ${options.maxRecoveryMs}`,
    }]);
  }
  return {
    thresholds: options.thresholds as Record<CountedCategory, number>,
    windowMs: options.windowMs,
    failureRate: options.failureRate,
    minimumVolume: options.minimumVolume,
    recoveryMs: options.recoveryMs,
    maxRecoveryMs: options.maxRecoveryMs ?? Math.max(120_000, options.recoveryMs),
    halfOpenRequests: options.halfOpenRequests,
    activeProbing: options.activeProbing,
    probeTimeoutMs: options.probeTimeoutMs,
    initialState: (options.initialState ?? {}) as Record<string, CircuitSnapshot>,
    meterProvider: options.meterProvider,
  };
}

