/**
 * Limit strategies for `adaptive({ algorithm })`: each factory validates the knobs that belong
 * to its algorithm and creates one algorithm instance per lane.
 *
 * @module
 */
import * as v from "valibot";
import { atLeast, boundedInteger, durationMs, parseOptions } from "../../shared/config.ts";
import { type AimdOptions, aimdLimit } from "./aimd.ts";
import type { LimitAlgorithm } from "./algorithm.ts";
import { fixedLimit } from "./fixed.ts";
import { type GradientOptions, gradientLimit } from "./gradient.ts";
import { type VegasOptions, vegasLimit } from "./vegas.ts";

export type { AimdOptions, GradientOptions, VegasOptions };

/** A limit algorithm with its settings; `adaptive()` creates one instance per lane. */
export interface LimitStrategy {
  /** `gradient`, `vegas`, `aimd` or `fixed` (shown in `stats().adaptive.algorithm`). */
  readonly name: string;
  /** A fresh algorithm with its own state. */
  create(): LimitAlgorithm;
}

const fraction = v.pipe(v.number(), v.finite(), v.gtValue(0), v.maxValue(1));
const growthFactor = v.pipe(v.number(), v.finite(), v.gtValue(1));

const GRADIENT = v.strictObject({
  growthFactor: v.optional(growthFactor),
  smoothing: v.optional(fraction),
  tolerance: v.optional(atLeast(1)),
  longWindow: v.optional(boundedInteger(1, 1_000_000)),
});
const VEGAS = v.strictObject({
  growthFactor: v.optional(growthFactor),
  probeEvery: v.optional(boundedInteger(1, 1_000_000)),
});
const AIMD = v.strictObject({
  backoffRatio: v.optional(v.pipe(v.number(), v.gtValue(0), v.ltValue(1))),
  latencyThresholdMs: v.optional(durationMs(0, { exclusive: true })),
});

/**
 * The gradient strategy (the default): follows the ratio of long-term to short-term round-trip
 * time. Knobs: `growthFactor` (1.8), `smoothing` (0.2), `tolerance` (1.5), `longWindow` (600).
 *
 * @example
 * ```ts
 * adaptive({ algorithm: gradient({ tolerance: 2 }) });
 * ```
 */
export function gradient(options?: GradientOptions): LimitStrategy {
  const config = parseOptions("gradient", GRADIENT, options);
  return { name: "gradient", create: () => gradientLimit(config) };
}

/**
 * The vegas strategy: estimates the queue at the server from the minimum round trip. Knobs:
 * `growthFactor` (1.8), `probeEvery`.
 *
 * @example
 * ```ts
 * adaptive({ algorithm: vegas() });
 * ```
 */
export function vegas(options?: VegasOptions): LimitStrategy {
  const config = parseOptions("vegas", VEGAS, options);
  return { name: "vegas", create: () => vegasLimit(config) };
}

/**
 * The AIMD strategy: +1 after a busy healthy window, × `backoffRatio` (0.9) after timeouts or a
 * mean round trip above `latencyThresholdMs` (200).
 *
 * @example
 * ```ts
 * adaptive({ algorithm: aimd({ latencyThresholdMs: 100 }) });
 * ```
 */
export function aimd(options?: AimdOptions): LimitStrategy {
  const config = parseOptions("aimd", AIMD, options);
  return { name: "aimd", create: () => aimdLimit(config) };
}

/**
 * A fixed limit: `adaptive()` as a plain admission queue (the limit stays at `initial`).
 *
 * @example
 * ```ts
 * adaptive({ algorithm: fixed(), max: 8 });
 * ```
 */
export function fixed(): LimitStrategy {
  return { name: "fixed", create: fixedLimit };
}

const BY_NAME: Record<string, () => LimitStrategy> = { gradient, vegas, aimd, fixed };

/**
 * The strategy for an `algorithm` option: a strategy object, or a name for its defaults.
 *
 * @example
 * ```ts
 * strategyOf("vegas").name; // "vegas"
 * ```
 */
export function strategyOf(algorithm: LimitStrategy | "gradient" | "vegas" | "aimd" | "fixed"): LimitStrategy {
  return typeof algorithm === "string" ? BY_NAME[algorithm]!() : algorithm;
}

/** valibot schema of the `algorithm` option. */
export const ALGORITHM: v.GenericSchema<LimitStrategy | "gradient" | "vegas" | "aimd" | "fixed"> = v.union([
  v.picklist(["gradient", "vegas", "aimd", "fixed"]),
  v.custom<LimitStrategy>(
    (value) =>
      typeof value === "object" && value !== null && typeof (value as LimitStrategy).name === "string" &&
      typeof (value as LimitStrategy).create === "function",
    "must be a limit strategy (gradient(), vegas(), aimd(), fixed()) or its name",
  ),
]);
