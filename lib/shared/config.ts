/**
 * Option parsing shared by `pilot()` and every interceptor factory: valibot validates, a
 * `ConfigError` names each bad field.
 *
 * @module
 */
import type { MeterProvider, TracerProvider } from "@opentelemetry/api";
import * as v from "valibot";
import { ConfigError } from "./errors.ts";

/**
 * Validate `input` against `schema` or throw a `ConfigError` naming every bad field (an unknown
 * key with the nearest valid option: `unknown option slowQueryMS — did you mean slowQueryMs?`).
 *
 * @example
 * ```ts
 * const Options = v.strictObject({ slowQueryMs: v.optional(v.pipe(v.number(), v.minValue(0)), 150) });
 * const options = parseOptions("monitor", Options, input ?? {});
 * ```
 */
export function parseOptions<const Schema extends v.GenericSchema>(
  scope: string,
  schema: Schema,
  input: unknown,
): v.InferOutput<Schema> {
  const result = v.safeParse(schema, input ?? {});
  if (!result.success) throw ConfigError.fromIssues(scope, result.issues, schema);
  return result.output;
}

/** A finite number ≥ `min` (valibot pipe), the most common option shape. */
export const atLeast = (min: number): v.SchemaWithPipe<
  readonly [v.NumberSchema<undefined>, v.FiniteAction<number, undefined>, v.MinValueAction<number, number, undefined>]
> => v.pipe(v.number(), v.finite(), v.minValue(min));

/** An integer ≥ `min`. */
export const integerAtLeast = (min: number): v.SchemaWithPipe<
  readonly [v.NumberSchema<undefined>, v.IntegerAction<number, undefined>, v.MinValueAction<number, number, undefined>]
> => v.pipe(v.number(), v.integer(), v.minValue(min));

/** An OpenTelemetry `MeterProvider` (the `meterProvider` option of pilot() and the interceptors). */
export const METER_PROVIDER: v.CustomSchema<MeterProvider, v.ErrorMessage<v.CustomIssue> | undefined> = v.custom<MeterProvider>(
  (value) => typeof value === "object" && value !== null && typeof (value as MeterProvider).getMeter === "function",
  "must be an OpenTelemetry MeterProvider (an object with getMeter())",
);

/** An OpenTelemetry `TracerProvider` (the `tracerProvider` option of pilot() and tracing()). */
export const TRACER_PROVIDER: v.CustomSchema<TracerProvider, v.ErrorMessage<v.CustomIssue> | undefined> = v.custom<TracerProvider>(
  (value) => typeof value === "object" && value !== null && typeof (value as TracerProvider).getTracer === "function",
  "must be an OpenTelemetry TracerProvider (an object with getTracer())",
);
