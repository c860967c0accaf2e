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
  const notPlain = isPlainObject(input ?? {})
    ? nonPlainPath(schema as SchemaShape, input ?? {}, [])
    : { path: "", value: input };
  if (notPlain !== undefined) {
    const what = notPlain.path === "" ? "options must be" : "must be";
    throw new ConfigError(scope, [{
      path: notPlain.path,
      message: `${what} a plain object ({ … }), got ${kindOf(notPlain.value)}`,
    }]);
  }
  // One message per field: the first rule it broke ("must be an integer", not also "must be >= 16").
  const result = v.safeParse(schema, input ?? {}, { abortPipeEarly: true });
  if (!result.success) throw ConfigError.fromIssues(scope, result.issues, schema);
  return result.output;
}

/** Where a schema's object entries live (through optional wrappers, pipes and unions). */
interface SchemaShape {
  readonly entries?: Record<string, SchemaShape>;
  readonly wrapped?: SchemaShape;
  readonly options?: readonly SchemaShape[];
}

/**
 * True for `{ … }` and `Object.create(null)`: not an array, not a class instance, nothing
 * inherited that a schema would read as an option.
 *
 * @example
 * ```ts
 * isPlainObject({ slowQueryMs: 1 }); // true
 * isPlainObject([]); // false
 * isPlainObject(Object.create({ slowQueryMs: 1 })); // false
 * ```
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** `null`, `an array`, `a Date`, `42`…: what a value is, for messages (never its contents). */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value !== "object") return typeof value;
  const name = Object.getPrototypeOf(value)?.constructor?.name;
  return typeof name === "string" && name !== "Object" ? `an instance of ${name}` : "an object with a prototype";
}

/** Object schemas reachable from `shape` without entering another object. */
function objectShapes(shape: SchemaShape): SchemaShape[] {
  if (shape.wrapped !== undefined) return objectShapes(shape.wrapped);
  if (shape.options !== undefined) return shape.options.flatMap(objectShapes);
  return shape.entries !== undefined ? [shape] : [];
}

/** The first object in `input` that an object schema would read but that is not plain. */
function nonPlainPath(
  schema: SchemaShape,
  input: unknown,
  path: readonly string[],
): { path: string; value: unknown } | undefined {
  const shapes = objectShapes(schema);
  if (shapes.length === 0 || typeof input !== "object" || input === null) return undefined;
  if (!isPlainObject(input)) return { path: path.join("."), value: input };
  for (const shape of shapes) {
    for (const [key, entry] of Object.entries(shape.entries!)) {
      if (!Object.hasOwn(input, key)) continue;
      const found = nonPlainPath(entry, input[key], [...path, key]);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * The longest delay a timer can hold: 2^31−1 ms (about 24.8 days). `setTimeout` fires a longer
 * one after about 1 ms, so every duration option is bounded by this.
 *
 * @example
 * ```ts
 * setTimeout(fire, Math.min(delayMs, MAX_TIMER_MS));
 * ```
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * A duration option in ms: finite, ≥ `min` (or > `min` with `{ exclusive: true }`) and at most
 * `max` (default {@link MAX_TIMER_MS}; the message names the bound).
 *
 * @example
 * ```ts
 * const Options = v.strictObject({ timeoutMs: v.optional(durationMs(0, { exclusive: true }), 30_000) });
 * parseOptions("deadline", Options, { timeoutMs: 2 ** 31 });
 * // ConfigError: deadline: timeoutMs: must be at most 2147483647 ms (2^31−1, the longest a timer can wait), got 2147483648
 * ```
 */
export function durationMs(min: number, bounds: { exclusive?: boolean; max?: number } = {}): v.GenericSchema<number> {
  const max = bounds.max ?? MAX_TIMER_MS;
  const why = max === MAX_TIMER_MS ? " (2^31−1, the longest a timer can wait)" : "";
  return v.pipe(
    v.number(),
    v.finite(`must be a finite number of ms (at most ${max})`),
    bounds.exclusive === true
      ? v.gtValue(min, (issue) => `must be > ${min} ms, got ${issue.input}`)
      : v.minValue(min, (issue) => `must be >= ${min} ms, got ${issue.input}`),
    v.maxValue(max, (issue) => `must be at most ${max} ms${why}, got ${issue.input}`),
  );
}

/**
 * A size or count option: an integer from `min` to `max` inclusive (the message names the bound).
 *
 * @example
 * ```ts
 * const Options = v.strictObject({ maxAttempts: v.optional(boundedInteger(1, 100), 3) });
 * parseOptions("retry", Options, { maxAttempts: 1e300 }); // ConfigError: retry: maxAttempts: must be at most 100, got 1e+300
 * ```
 */
export function boundedInteger(min: number, max: number): v.GenericSchema<number> {
  return v.pipe(
    v.number(),
    v.integer((issue) => `must be an integer from ${min} to ${max}, got ${issue.input}`),
    v.minValue(min, (issue) => `must be >= ${min}, got ${issue.input}`),
    v.maxValue(max, (issue) => `must be at most ${max}, got ${issue.input}`),
  );
}

/**
 * A finite number ≥ `min` (valibot pipe), for ratios and factors; durations use
 * {@link durationMs}, sizes {@link boundedInteger}.
 *
 * @example
 * ```ts
 * const Options = v.strictObject({ tolerance: v.optional(atLeast(1)) });
 * ```
 */
export const atLeast = (min: number): v.SchemaWithPipe<
  readonly [v.NumberSchema<undefined>, v.FiniteAction<number, undefined>, v.MinValueAction<number, number, undefined>]
> => v.pipe(v.number(), v.finite(), v.minValue(min));

/**
 * An integer ≥ `min`, unbounded: only for values that are not sizes (an open count restored from
 * a snapshot); sizes use {@link boundedInteger}.
 *
 * @example
 * ```ts
 * const Snapshot = v.strictObject({ opens: integerAtLeast(1) });
 * ```
 */
export const integerAtLeast = (min: number): v.SchemaWithPipe<
  readonly [v.NumberSchema<undefined>, v.IntegerAction<number, undefined>, v.MinValueAction<number, number, undefined>]
> => v.pipe(v.number(), v.integer(), v.minValue(min));

/**
 * An OpenTelemetry `MeterProvider` (the `meterProvider` option of pilot() and the interceptors).
 *
 * @example
 * ```ts
 * const Options = v.strictObject({ meterProvider: v.optional(METER_PROVIDER) });
 * ```
 */
export const METER_PROVIDER: v.CustomSchema<MeterProvider, v.ErrorMessage<v.CustomIssue> | undefined> = v.custom<MeterProvider>(
  (value) => typeof value === "object" && value !== null && typeof (value as MeterProvider).getMeter === "function",
  "must be an OpenTelemetry MeterProvider (an object with getMeter())",
);

/**
 * An OpenTelemetry `TracerProvider` (the `tracerProvider` option of pilot() and tracing()).
 *
 * @example
 * ```ts
 * const Options = v.strictObject({ tracerProvider: v.optional(TRACER_PROVIDER) });
 * ```
 */
export const TRACER_PROVIDER: v.CustomSchema<TracerProvider, v.ErrorMessage<v.CustomIssue> | undefined> = v.custom<TracerProvider>(
  (value) => typeof value === "object" && value !== null && typeof (value as TracerProvider).getTracer === "function",
  "must be an OpenTelemetry TracerProvider (an object with getTracer())",
);
