/**
 * `pgpilot/prometheus`: Prometheus export for Node, Bun and Deno.
 *
 * - `metricsHandler()`: a web request handler that answers with the Prometheus text format,
 *   for `Bun.serve`, `Deno.serve`, Hono or any `fetch`-style server.
 * - `servePrometheus({ host, port })`: a small HTTP server (node:http, which Node, Bun and Deno
 *   all provide) serving `/metrics` and, when given a pilot, `/health/database`.
 * - `healthHandler(sql)`: `sql.health()` as JSON with HTTP 200, or 503 when failed.
 *
 * Both create an OpenTelemetry SDK `MeterProvider` with a Prometheus reader and, by default,
 * register it as the global provider. Call them BEFORE `pilot()`: interceptors take their meter
 * when they are attached (or pass `meterProvider` to `pilot()`). The wrong order is not silent:
 * `servePrometheus({ health: sql })` and `server.serveHealth(sql)` throw a `ConfigError` for a
 * pilot created before any provider, and registering a provider while such a pilot is open warns.
 *
 * This is the only module of pgpilot that uses Node APIs; the core stays web-standard.
 *
 * @module
 */
import { createServer, type Server } from "node:http";
import { diag, metrics } from "@opentelemetry/api";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { MeterProvider, type MetricReader, type ResourceMetrics, type ViewOptions } from "@opentelemetry/sdk-metrics";
import * as v from "valibot";
import { parseOptions } from "./shared/config.ts";
import type { PilotHealth } from "./core/health.ts";
import { reportHookError } from "./shared/diag.ts";
import { healthHandler, type HealthSource } from "./telemetry/health-handler.ts";

import { createMetricProducer, linkMetricProducer, type PgpilotMetricProducer } from "./telemetry/metric-producer.ts";
import { metricsResponse, send } from "./telemetry/http-response.ts";
export { PROMETHEUS_CONTENT_TYPE } from "./telemetry/http-response.ts";
import { refuseMeterlessPilot, warnAboutMeterlessPilots } from "./telemetry/meter-binding.ts";
export { healthHandler } from "./telemetry/health-handler.ts";
export type { HealthSource } from "./telemetry/health-handler.ts";


/** Options shared by `metricsHandler()` and `servePrometheus()`. */
export interface PrometheusOptions {
  /** Register the provider as the global meter provider. Default true. */
  global?: boolean;
  /** Prefix for every metric name (`myapp_` …). Default none. */
  prefix?: string;
  /** Leave out `otel_scope_*` labels. Default false. */
  withoutScopeInfo?: boolean;
  /** Leave out the `target_info` metric. Default false. */
  withoutTargetInfo?: boolean;
  /** SDK views (rename, drop, re-bucket instruments). */
  views?: ViewOptions[];
}

/** A Prometheus text-format request handler with the provider it reads from. */
export interface MetricsHandler {
  (request?: Request): Promise<Response>;
  /** The SDK provider whose metrics are served (pass it to `monitor({ meterProvider })`). */
  readonly meterProvider: MeterProvider;
  /** The metrics as Prometheus text, without a Response around them. */
  scrape(): Promise<string>;
  /** Shut the provider down. */
  shutdown(): Promise<void>;
}

const COMMON = {
  prefix: v.optional(v.pipe(v.string(), v.regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, "must be a Prometheus name"))),
  withoutScopeInfo: v.optional(v.boolean(), false),
  withoutTargetInfo: v.optional(v.boolean(), false),
};
const PROVIDER = {
  global: v.optional(v.boolean(), true),
  views: v.optional(v.array(v.looseObject({}))),
};
const HTTP = {
  host: v.optional(v.pipe(v.string(), v.minLength(1))),
  port: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535)), 9464),
  endpoint: v.optional(v.pipe(v.string(), v.startsWith("/")), "/metrics"),
  healthEndpoint: v.optional(v.pipe(v.string(), v.startsWith("/")), "/health/database"),
};
const HEALTH_SOURCE = v.custom<HealthSource>(
  (value) => typeof (value as HealthSource | undefined)?.health === "function",
  "must have a health() method (a pilot sql)",
);

const HANDLER_OPTIONS = v.strictObject({ ...COMMON, ...PROVIDER });
const EXPORTER_OPTIONS = v.strictObject({ ...COMMON, ...HTTP });
const SERVE_OPTIONS = v.strictObject({ ...COMMON, ...PROVIDER, ...HTTP, health: v.optional(HEALTH_SOURCE) });

/**
 * OpenTelemetry names that Prometheus tooling rejects, and what pgpilot exposes instead.
 * Prometheus reserves the `_count` suffix for histograms and summaries (`promtool check metrics`:
 * "non-histogram and non-summary metrics should not have _count suffix"), so the semconv up-down
 * counter `db.client.connection.count` is exposed under its earlier semconv name,
 * `db.client.connections.usage` (`db_client_connections_usage`). OTLP exports keep the semconv name.
 *
 * @example
 * ```ts
 * PROMETHEUS_RENAMES["db.client.connection.count"]; // "db.client.connections.usage"
 * ```
 */
export const PROMETHEUS_RENAMES: Readonly<Record<string, string>> = Object.freeze({
  "db.client.connection.count": "db.client.connections.usage",
});

function renamed(resourceMetrics: ResourceMetrics): ResourceMetrics {
  return {
    ...resourceMetrics,
    scopeMetrics: resourceMetrics.scopeMetrics.map((scope) => ({
      ...scope,
      metrics: scope.metrics.map((metric) => {
        const name = PROMETHEUS_RENAMES[metric.descriptor.name];
        return name === undefined ? metric : { ...metric, descriptor: { ...metric.descriptor, name } };
      }),
    })),
  };
}

/** A pull reader plus the function that renders what it collects as Prometheus text. */
interface PrometheusReader {
  reader: PrometheusExporter;
  producer: PgpilotMetricProducer;
  scrape(): Promise<string>;
}

function prometheusReader(config: { prefix?: string; withoutScopeInfo: boolean; withoutTargetInfo: boolean }): PrometheusReader {
  // The exporter is used as a MetricReader only: pgpilot serves the text itself, so the same
  // code answers node:http, Bun.serve and Deno.serve.
  // Histograms monitor() aggregates itself arrive through this producer (see providerFor).
  const producer = createMetricProducer();
  const reader = new PrometheusExporter({ preventServerStart: true, metricProducers: [producer] });
  const serializer = new PrometheusSerializer(config.prefix, false, undefined, config.withoutTargetInfo, config.withoutScopeInfo);
  return {
    reader,
    producer,
    async scrape() {
      const { resourceMetrics, errors } = await reader.collect();
      for (const error of errors) reportHookError("prometheus.collect", error);
      return serializer.serialize(renamed(resourceMetrics));
    },
  };
}

function providerFor(
  reader: PrometheusExporter,
  producer: PgpilotMetricProducer,
  config: { global: boolean; views?: unknown[]; where: string },
): MeterProvider {
  const meterProvider = new MeterProvider({ readers: [reader], views: config.views as ViewOptions[] | undefined });
  if (config.global && !metrics.setGlobalMeterProvider(meterProvider)) {
    diag.warn("pgpilot: a global meter provider was already registered; pass meterProvider to the interceptors");
  } else if (config.global) warnAboutMeterlessPilots(config.where);
  // Its only reader collects the producer: monitor() on this provider aggregates locally —
  // unless views are given, which apply only to SDK instruments.
  if (config.views === undefined || config.views.length === 0) linkMetricProducer(meterProvider, producer);
  return meterProvider;
}

/**
 * A `fetch`-style handler that serves the metrics in the Prometheus text format.
 *
 * @example
 * ```ts
 * import { healthHandler, metricsHandler } from "pgpilot/prometheus";
 * const metrics = metricsHandler();            // before pilot(): registers the global provider
 * const sql = pilot(postgres(url), { interceptors: [monitor()] });
 * const health = healthHandler(sql);
 * Bun.serve({
 *   fetch(request) {
 *     const path = new URL(request.url).pathname;
 *     if (path === "/metrics") return metrics(request);
 *     if (path === "/health/database") return health(request);
 *     return new Response("not found", { status: 404 });
 *   },
 * });
 * ```
 */
export function metricsHandler(options?: PrometheusOptions): MetricsHandler {
  const config = parseOptions("metricsHandler", HANDLER_OPTIONS, options);
  const { reader, producer, scrape } = prometheusReader(config);
  const meterProvider = providerFor(reader, producer, { ...config, where: "metricsHandler" });
  return Object.assign(metricsResponse(scrape), {
    meterProvider,
    scrape,
    shutdown: () => meterProvider.shutdown(),
  });
}

/** HTTP options of `createPrometheusExporter()` and `servePrometheus()`. */
export interface PrometheusHttpOptions {
  /** Interface to listen on. Default all interfaces, like the OTel exporter. */
  host?: string;
  /** Port. Default 9464 (the OTel Prometheus exporter's); 0 picks a free one. */
  port?: number;
  /** Path of the metrics. Default `/metrics`. */
  endpoint?: string;
  /** Path of the health check (once one is given). Default `/health/database`. */
  healthEndpoint?: string;
}

/** Options of `createPrometheusExporter()`. */
export type PrometheusExporterOptions =
  & Omit<PrometheusOptions, "global" | "views">
  & PrometheusHttpOptions;

/** A Prometheus reader with its own HTTP server, for a MeterProvider you build. */
export interface PrometheusExporterServer {
  /**
   * The producer `reader` collects: pass it to `monitor({ metricProducer })` so the duration
   * histograms are aggregated inside pgpilot (no SDK call per query).
   */
  readonly metricProducer: PgpilotMetricProducer;
  /** Put it in `new MeterProvider({ readers: [exporter.reader] })`. */
  readonly reader: MetricReader;
  readonly port: number;
  /** `http://host:port/metrics` with the real port. */
  readonly url: string;
  /** Serve this health at `healthEndpoint` (a pilot `sql`, or a function returning its health). */
  serveHealth(source: HealthSource | (() => PilotHealth)): void;
  /** The metrics as Prometheus text. */
  scrape(): Promise<string>;
  /** Stop listening. */
  close(): Promise<void>;
}

/**
 * A Prometheus reader served over HTTP (node:http: Node, Bun and Deno), for applications that
 * build their own `MeterProvider`.
 *
 * @example
 * ```ts
 * const exporter = await createPrometheusExporter({ host: "127.0.0.1", port: 9464 });
 * const meterProvider = new MeterProvider({ readers: [exporter.reader] });
 * const sql = pilot(postgres(url), { interceptors: [monitor({ meterProvider })] });
 * exporter.serveHealth(sql);
 * ```
 */
export async function createPrometheusExporter(options?: PrometheusExporterOptions): Promise<PrometheusExporterServer> {
  const config = parseOptions("createPrometheusExporter", EXPORTER_OPTIONS, options);
  const { reader, producer, scrape } = prometheusReader(config);
  const serveMetrics = metricsResponse(scrape);
  let health: ((request?: Request) => Response) | undefined;
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    const answer = path === config.endpoint
      ? serveMetrics()
      : health !== undefined && path === config.healthEndpoint
      ? Promise.resolve(health())
      : Promise.resolve(new Response("not found\n", { status: 404 }));
    void answer.then((reply) => send(reply, request, response)).catch((error) => {
      reportHookError("prometheus.http", error);
      response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  const host = config.host === undefined || config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  return {
    reader,
    metricProducer: producer,
    port,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}${config.endpoint}`,
    serveHealth(source) {
      // A pilot sql is itself a function: look for health() first.
      health = healthHandler(typeof (source as HealthSource).health === "function"
        ? source as HealthSource
        : { health: source as () => PilotHealth });
    },
    scrape,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Options of `servePrometheus()`. */
export interface ServePrometheusOptions extends PrometheusOptions, PrometheusHttpOptions {
  /**
   * A pilot `sql` whose `health()` is served at `healthEndpoint`. With `global` (the default), a
   * pilot created before any meter provider was registered is refused (`ConfigError`): create it
   * after the server and hand it over with `server.serveHealth(sql)`.
   */
  health?: HealthSource;
}

/** A running metrics server with its provider. */
export interface PrometheusServer {
  /** `http://host:port/metrics` with the real port. */
  readonly url: string;
  readonly port: number;
  readonly meterProvider: MeterProvider;
  /**
   * Serve this pilot's `health()` at `healthEndpoint` — how to add the pilot created after the
   * server. With `global`, throws a `ConfigError` for a pilot created before any meter provider
   * was registered.
   */
  serveHealth(sql: HealthSource): void;
  /** The metrics as Prometheus text. */
  scrape(): Promise<string>;
  /** Stop listening and shut the provider down. */
  close(): Promise<void>;
}

/**
 * Serve `/metrics` (and `/health/database` when given a pilot) over HTTP, with a MeterProvider
 * registered globally. Works on Node, Bun and Deno (all three provide node:http).
 *
 * @example
 * ```ts
 * import { servePrometheus } from "pgpilot/prometheus";
 * const server = await servePrometheus({ port: 9464 }); // before pilot()
 * const sql = pilot(postgres(url), { interceptors: [monitor()] });
 * server.serveHealth(sql); // /health/database
 * // scrape http://localhost:9464/metrics
 * await server.close();
 * ```
 */
export async function servePrometheus(options?: ServePrometheusOptions): Promise<PrometheusServer> {
  const { global, views, health, ...http } = parseOptions("servePrometheus", SERVE_OPTIONS, options);
  // With its provider global, a pilot with no-op meters relied on the global one: too late now.
  if (global) refuseMeterlessPilot("servePrometheus", health);
  const exporter = await createPrometheusExporter(http);
  const where = "servePrometheus";
  const meterProvider = providerFor(exporter.reader as PrometheusExporter, exporter.metricProducer, { global, views, where });
  if (health !== undefined) exporter.serveHealth(health);
  return {
    url: exporter.url,
    port: exporter.port,
    meterProvider,
    serveHealth(sql) {
      if (global) refuseMeterlessPilot("servePrometheus", sql, "serveHealth");
      exporter.serveHealth(sql);
    },
    scrape: exporter.scrape,
    async close() {
      await exporter.close();
      await meterProvider.shutdown();
    },
  };
}
