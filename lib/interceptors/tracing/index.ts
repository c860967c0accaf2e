/**
 * `tracing()`: one OpenTelemetry CLIENT span per executed operation.
 *
 * - Spans are named `{db.operation.name} {db.collection.name}` (`SELECT users`); transactions
 *   and reservations get a `transaction` / `reserve` span, and the queries inside them are its
 *   children even without a context manager (Bun, Deno, edge): the parent span is looked up by
 *   the parent operation, not by the active context.
 * - Outside a transaction the active context is respected: with a context manager (Node's
 *   AsyncLocalStorage one), a query issued inside a request handler's span becomes its child.
 * - Errors set status ERROR with `error.type` and `db.response.status_code` (SQLSTATE). The
 *   error message is NOT recorded: PostgreSQL puts values in messages.
 * - Opt-in: `captureParameters` (values as `db.query.parameter.<index>`), `sqlCommenter`
 *   (`/*traceparent='…'*\/` in front of `unsafe()` text; tagged templates are left alone, see
 *   docs/observability.md).
 *
 * @module
 */
import {
  type Attributes,
  context,
  isSpanContextValid,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import * as v from "valibot";
import { boundedInteger, parseOptions, TRACER_PROVIDER } from "../../shared/config.ts";
import type { Interceptor, LaneInfo, Next, PilotContext } from "../../core/interceptor.ts";
import type { Operation, OperationAnalysis } from "../../core/operation.ts";
import { reportHookError } from "../../shared/diag.ts";
import { errorAttributes } from "../../telemetry/metric-attributes.ts";
import { ATTR, DB_SYSTEM, SLOW_QUERY_EVENT } from "../../telemetry/names.ts";
import { observe } from "../../telemetry/observe.ts";
import { pgpilotTracer } from "../../telemetry/otel.ts";

/** Options of `tracing()`. */
export interface TracingOptions {
  /** Tracer provider to use instead of the global one. */
  tracerProvider?: TracerProvider;
  /** Only trace operations that have a parent span (active context or enclosing transaction). Default false. */
  requireParentSpan?: boolean;
  /**
   * Record parameter values as `db.query.parameter.<index>` (argument position). Default false:
   * values are often personal data or secrets.
   */
  captureParameters?: boolean;
  /**
   * Put a sqlcommenter `/*traceparent='00-…'*\/` comment in front of `unsafe()` SQL, so the
   * server's logs and `pg_stat_activity` link to the trace. Default false. Tagged templates and
   * `unsafe(…, { prepare: true })` are left alone (see docs/observability.md).
   */
  sqlCommenter?: boolean;
  /** `db.query.text` longer than this is cut (with `…`), 16 to 1 000 000. Default 2048. */
  maxQueryTextLength?: number;
  /** Longest parameter value recorded with `captureParameters`, 1 to 1 000 000. Default 256. */
  maxParameterLength?: number;
}

/** @deprecated Use `TracingInterceptor`. */
export type Tracing = TracingInterceptor;

/** The interceptor `tracing()` returns. */
export interface TracingInterceptor extends Interceptor {
  readonly name: "tracing";
  /** The span of a running transaction or reservation (for instrumentation that wants to nest under it). */
  spanOf(op: Operation): Span | undefined;
}

const OPTIONS = v.strictObject({
  tracerProvider: v.optional(TRACER_PROVIDER),
  requireParentSpan: v.optional(v.boolean(), false),
  captureParameters: v.optional(v.boolean(), false),
  sqlCommenter: v.optional(v.boolean(), false),
  maxQueryTextLength: v.optional(boundedInteger(16, 1_000_000), 2048),
  maxParameterLength: v.optional(boundedInteger(1, 1_000_000), 256),
});

/** Name and start attributes of a span, cached per analysis (for the lane it ran on last). */
interface Description {
  name: string;
  lane: string;
  attributes: Attributes;
}

/**
 * Span event added to queries at or above `monitor({ slowQueryMs })`, with attributes
 * `pgpilot.duration_ms` and `pgpilot.threshold_ms`.
 *
 * @example
 * ```ts
 * const slow = spans.filter((span) => span.events.some((event) => event.name === SLOW_QUERY_EVENT));
 * ```
 */
export { SLOW_QUERY_EVENT };

/**
 * CLIENT spans for every executed query, transaction and reservation.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * const sql = pilot(postgres(url), { interceptors: [tracing(), monitor()] });
 * await sql.begin(async (tx) => {
 *   await tx`update accounts set balance = balance - ${amount} where id = ${from}`; // child span
 * }); // one "transaction" span with one "UPDATE accounts" child
 * ```
 */
export function tracing(options?: TracingOptions): TracingInterceptor {
  const config = parseOptions("tracing", OPTIONS, options);
  const spans = new WeakMap<Operation, Span>();
  let descriptions = new WeakMap<OperationAnalysis, Description>();
  const laneAttributes = new Map<string, Attributes>();
  let lanes: ReadonlyMap<string, LaneInfo> = new Map();
  let poolName = "default";
  let tracer: Tracer | undefined;
  let slowQueryMs: number | undefined;
  let tracerProvider = config.tracerProvider;

  /** Name and start attributes for `op` on `lane`, cached per analysis (and lane). */
  function describe(op: Operation, lane: string): Description {
    const analysis = op.analysis;
    const cached = descriptions.get(analysis);
    if (cached !== undefined && cached.lane === lane) return cached;
    const attributes: Attributes = { [ATTR.DB_SYSTEM_NAME]: DB_SYSTEM };
    let name: string;
    if (op.kind === "query" || op.kind === "listen") {
      attributes[ATTR.DB_OPERATION_NAME] = analysis.command;
      if (analysis.collection !== undefined) attributes[ATTR.DB_COLLECTION_NAME] = analysis.collection;
      const text = analysis.text;
      attributes[ATTR.DB_QUERY_TEXT] = text.length > config.maxQueryTextLength
        ? text.slice(0, config.maxQueryTextLength - 1) + "…"
        : text;
      name = analysis.collection === undefined ? analysis.command : `${analysis.command} ${analysis.collection}`;
    } else {
      name = op.kind;
    }
    Object.assign(attributes, attributesOfLane(lane));
    // One entry per analysis: the lane it was last used on (the common case is one lane).
    const description = { name, lane, attributes: Object.freeze(attributes) };
    descriptions.set(analysis, description);
    return description;
  }

  function attributesOfLane(lane: string): Attributes {
    let attributes = laneAttributes.get(lane);
    if (attributes === undefined) {
      attributes = { [ATTR.LANE]: lane, [ATTR.POOL_NAME]: poolName };
      const info = lanes.get(lane);
      if (info !== undefined) {
        if (info.database !== "") attributes[ATTR.DB_NAMESPACE] = info.database;
        attributes[ATTR.SERVER_ADDRESS] = info.host;
        attributes[ATTR.SERVER_PORT] = info.port;
        laneAttributes.set(lane, Object.freeze(attributes));
      }
    }
    return attributes;
  }

  function start(op: Operation): Span | undefined {
    let parentContext = context.active();
    if (op.parent !== undefined) {
      const parentSpan = spans.get(op.parent);
      // An untraced transaction (requireParentSpan) keeps its queries untraced too.
      if (parentSpan === undefined) return undefined;
      parentContext = trace.setSpan(parentContext, parentSpan);
    } else if (config.requireParentSpan && trace.getSpan(parentContext) === undefined) {
      return undefined;
    }
    const description = describe(op, op.lane);
    tracer ??= pgpilotTracer(tracerProvider);
    const span = tracer.startSpan(
      description.name,
      { kind: SpanKind.CLIENT, attributes: description.attributes },
      parentContext,
    );
    if (op.kind === "transaction" || op.kind === "reserve") spans.set(op, span);
    else if (span.isRecording()) {
      if (config.captureParameters) captureParameters(span, op);
      if (config.sqlCommenter) addTraceparent(span, op);
    }
    return span;
  }

  function captureParameters(span: Span, op: Operation): void {
    const args = op.query?.args;
    if (args === undefined) return;
    for (let index = 0; index < args.length; index++) {
      const value = parameterText(args[index]);
      if (value === undefined) continue;
      span.setAttribute(
        ATTR.DB_QUERY_PARAMETER_PREFIX + index,
        value.length > config.maxParameterLength ? value.slice(0, config.maxParameterLength) + "…" : value,
      );
    }
  }

  function finish(span: Span, op: Operation, lane: string, value: unknown, error: unknown, failed: boolean): void {
    try {
      if (span.isRecording()) {
        // Routed elsewhere after the span started (affinity): the lane's attributes change.
        if (op.lane !== lane) span.setAttributes(attributesOfLane(op.lane));
        if (op.attempt > 1) span.setAttribute(ATTR.ATTEMPTS, op.attempt);
        if (failed) {
          const { type, status } = errorAttributes(error);
          span.setAttribute(ATTR.ERROR_TYPE, type);
          if (status !== undefined) span.setAttribute(ATTR.DB_RESPONSE_STATUS_CODE, status);
          span.setStatus({ code: SpanStatusCode.ERROR, message: type });
        } else if (op.kind === "query") {
          const rows = (value as { count?: unknown } | undefined)?.count;
          if (typeof rows === "number") span.setAttribute(ATTR.RETURNED_ROWS, rows);
        }
        if (slowQueryMs !== undefined && op.kind === "query") {
          const ms = performance.now() - op.startedAt;
          if (ms >= slowQueryMs) {
            span.addEvent(SLOW_QUERY_EVENT, { [ATTR.DURATION_MS]: ms, [ATTR.THRESHOLD_MS]: slowQueryMs });
          }
        }
      }
      span.end();
    } catch (hookError) {
      reportHookError("tracing.end", hookError);
    }
  }

  return {
    name: "tracing",
    stage: "observe",
    intercept(op: Operation, next: Next): Promise<unknown> {
      let span: Span | undefined;
      try {
        span = start(op);
      } catch (error) {
        reportHookError("tracing.start", error);
      }
      // A span the sampler dropped records nothing and its end() does nothing: no need to wait
      // for the outcome (it still parents a transaction's queries, so they are dropped too).
      if (span === undefined || !span.isRecording()) return next();
      const traced = span;
      const lane = op.lane;
      return observe(next, (value, error, failed) => finish(traced, op, lane, value, error, failed));
    },
    attach(pilotContext: PilotContext): void {
      lanes = pilotContext.lanes;
      poolName = pilotContext.name;
      laneAttributes.clear();
      descriptions = new WeakMap();
      slowQueryMs = pilotContext.capabilities.slowQueryMs;
      tracerProvider = config.tracerProvider ?? pilotContext.tracerProvider;
      try {
        tracer = pgpilotTracer(tracerProvider);
      } catch (error) {
        reportHookError("tracing.attach", error);
      }
    },
    spanOf(op: Operation): Span | undefined {
      return spans.get(op);
    },
  };
}

/**
 * Prefix a sqlcommenter `traceparent` comment to `unsafe()` text. Only there: a tagged
 * template's strings are frozen and shared by every call (and postgres.js caches by them), and
 * a prepared statement with a unique text per call would grow postgres.js's statement cache
 * without bound.
 */
function addTraceparent(span: Span, op: Operation): void {
  const query = op.query;
  if (query === undefined || query.tagged || query.strings.length !== 1 || query.options.prepare === true) return;
  const spanContext = span.spanContext();
  if (!isSpanContextValid(spanContext)) return;
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
  (query.strings as string[])[0] = `/*traceparent='00-${spanContext.traceId}-${spanContext.spanId}-${flags}'*/ ` +
    query.strings[0];
}

function parameterText(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
    case "bigint":
    case "boolean":
      return String(value);
    case "object":
      if (value === null) return "null";
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString();
      return undefined; // fragments, helpers and objects: not a single value
    default:
      return undefined;
  }
}
