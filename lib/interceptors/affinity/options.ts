/**
 * Options of `affinity()`: the schema (valibot, unknown keys rejected) and their defaults.
 *
 * @module
 */
import type { MeterProvider } from "@opentelemetry/api";
import * as v from "valibot";
import { boundedInteger, durationMs, parseOptions, METER_PROVIDER } from "../../shared/config.ts";
import { ConfigError } from "../../shared/errors.ts";
import type { LaneInfo } from "../../core/interceptor.ts";

/** Options of `affinity()`. Every field is optional. */
export interface AffinityOptions {
  /**
   * Lane(s) that serve read-only statements, balanced by least outstanding requests.
   * Default: every lane except the primary and the `slow` lane. `[]` keeps reads on the primary.
   */
  reads?: string | string[];
  /** Lane for learned-slow patterns (analytics). Default: none (learned affinity off). */
  slow?: string;
  /** A pattern whose p95 over a window exceeds this (ms, 1 to 2^31−1) moves to the `slow` lane. Default 500. */
  slowMs?: number;
  /** A slow pattern whose p95 over a window falls below this (ms, ≤ `slowMs`) moves back. Default `slowMs / 2`. */
  recoverMs?: number;
  /**
   * Executions per evaluation window (and before a pattern can move), 1 to 10 000 (each pattern
   * keeps a window this long). Default 20.
   */
  minSamples?: number;
  /** Most patterns tracked at once, 1 to 100 000. Default 1000. */
  maxPatterns?: number;
  /** After a write to a table, reads touching it go to the primary for this long (ms, at most 2^31−1). Default 1000; 0 turns it off. */
  readYourWritesMs?: number;
  /** Most recently written tables remembered at once, 1 to 1 000 000. Default 10000. */
  maxWrittenTables?: number;
  /** Meter provider for `pgpilot.affinity.*` metrics. Default: the global one. */
  meterProvider?: MeterProvider;
}

/** Options after validation and defaults (lane names are resolved later, in `attach`). */
export interface ResolvedAffinityOptions {
  readonly reads: readonly string[] | undefined;
  readonly slow: string | undefined;
  readonly slowMs: number;
  readonly recoverMs: number;
  readonly minSamples: number;
  readonly maxPatterns: number;
  readonly readYourWritesMs: number;
  readonly maxWrittenTables: number;
  readonly meterProvider: MeterProvider | undefined;
}

const LANE_NAME = v.pipe(v.string(), v.minLength(1));

const SCHEMA = v.strictObject({
  reads: v.optional(v.union([LANE_NAME, v.array(LANE_NAME)])),
  slow: v.optional(LANE_NAME),
  slowMs: v.optional(durationMs(1), 500),
  recoverMs: v.optional(durationMs(0)),
  minSamples: v.optional(boundedInteger(1, 10_000), 20),
  maxPatterns: v.optional(boundedInteger(1, 100_000), 1000),
  readYourWritesMs: v.optional(durationMs(0), 1000),
  maxWrittenTables: v.optional(boundedInteger(1, 1_000_000), 10_000),
  meterProvider: v.optional(METER_PROVIDER),
});

/**
 * Validate `affinity()` options (lane names are checked against the lanes in `checkLanes`).
 *
 * @example
 * ```ts
 * const options = resolveAffinityOptions({ reads: "replica", slow: "analytics", slowMs: 300 });
 * options.recoverMs; // 150
 * ```
 */
export function resolveAffinityOptions(input: AffinityOptions | undefined): ResolvedAffinityOptions {
  const options = parseOptions("affinity", SCHEMA, input);
  const recoverMs = options.recoverMs ?? options.slowMs / 2;
  if (recoverMs > options.slowMs) {
    throw new ConfigError("affinity", [{
      path: "recoverMs",
      message: `must be <= slowMs (${options.slowMs}) for hysteresis (got ${recoverMs})`,
    }]);
  }
  return Object.freeze({
    reads: typeof options.reads === "string" ? [options.reads] : options.reads,
    slow: options.slow,
    slowMs: options.slowMs,
    recoverMs,
    minSamples: options.minSamples,
    maxPatterns: options.maxPatterns,
    readYourWritesMs: options.readYourWritesMs,
    maxWrittenTables: options.maxWrittenTables,
    meterProvider: options.meterProvider,
  });
}

/**
 * Check the lane names in the options against the pilot's lanes and work out the read lanes.
 * Throws a `ConfigError` naming each unknown lane.
 *
 * @example
 * ```ts
 * const { reads, slow } = checkLanes(options, context.lanes, context.primaryLane);
 * ```
 */
export function checkLanes(
  options: ResolvedAffinityOptions,
  lanes: ReadonlyMap<string, LaneInfo>,
  primary: string,
): { reads: string[]; slow: string | undefined } {
  const issues: { path: string; message: string }[] = [];
  const known = [...lanes.keys()].join(", ");
  const check = (name: string, path: string): void => {
    if (!lanes.has(name)) issues.push({ path, message: `no lane named "${name}" (lanes: ${known})` });
  };
  if (options.slow !== undefined) check(options.slow, "slow");
  options.reads?.forEach((name, index) => check(name, options.reads!.length === 1 ? "reads" : `reads[${index}]`));
  if (issues.length > 0) throw new ConfigError("affinity", issues);
  const reads = options.reads === undefined
    ? [...lanes.keys()].filter((name) => name !== primary && name !== options.slow)
    : [...new Set(options.reads)];
  return { reads, slow: options.slow };
}
