/**
 * Metric and attribute names: OpenTelemetry semantic conventions for database clients
 * (stable since semconv 1.33) where they exist, `pgpilot.*` for the rest.
 * One place, so the dashboard, the alert rules and the tests agree with the code.
 *
 * @module
 */

/** Semconv attribute keys. */
export const ATTR = {
  DB_SYSTEM_NAME: "db.system.name",
  DB_NAMESPACE: "db.namespace",
  DB_OPERATION_NAME: "db.operation.name",
  DB_COLLECTION_NAME: "db.collection.name",
  DB_QUERY_TEXT: "db.query.text",
  DB_QUERY_PARAMETER_PREFIX: "db.query.parameter.",
  DB_RESPONSE_STATUS_CODE: "db.response.status_code",
  ERROR_TYPE: "error.type",
  SERVER_ADDRESS: "server.address",
  SERVER_PORT: "server.port",
  POOL_NAME: "db.client.connection.pool.name",
  CONNECTION_STATE: "db.client.connection.state",
  LANE: "pgpilot.lane",
  /** Attempts of an operation, on its span when it was retried. */
  ATTEMPTS: "pgpilot.attempts",
  /** Rows a query returned or affected (span attribute). */
  RETURNED_ROWS: "db.response.returned_rows",
  /** Slow-query span event: its duration and the threshold (ms). */
  DURATION_MS: "pgpilot.duration_ms",
  THRESHOLD_MS: "pgpilot.threshold_ms",
  /** Why the limiter changed its limit (`up` / `down`) or refused a call (`timeout` / `saturated`). */
  ADAPTIVE_DIRECTION: "pgpilot.adaptive.direction",
  ADAPTIVE_REASON: "pgpilot.adaptive.reason",
  /** Why retry() ran an operation again. */
  RETRY_REASON: "pgpilot.retry.reason",
  /** Why affinity() chose a lane. */
  AFFINITY_REASON: "pgpilot.affinity.reason",
} as const;

/** `db.system.name` for PostgreSQL. */
export const DB_SYSTEM = "postgresql";

/** Semconv metric names. */
export const METRIC = {
  OPERATION_DURATION: "db.client.operation.duration",
  CONNECTION_COUNT: "db.client.connection.count",
  CONNECTION_MAX: "db.client.connection.max",
  CONNECTION_IDLE_MIN: "db.client.connection.idle.min",
  CONNECTION_IDLE_MAX: "db.client.connection.idle.max",
  PENDING_REQUESTS: "db.client.connection.pending_requests",
  WAIT_TIME: "db.client.connection.wait_time",
  USE_TIME: "db.client.connection.use_time",
  TIMEOUTS: "db.client.connection.timeouts",
} as const;

/**
 * Semconv histogram buckets for database client durations, in seconds
 * (the SDK's defaults are made for milliseconds).
 */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.001,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
  10,
];

/** `monitor()`'s own metric names. */
export const MONITOR_METRIC = {
  SLOW_QUERIES: "pgpilot.slow_queries",
} as const;

/**
 * `breaker()`'s metric names.
 *
 * @example
 * ```ts
 * meter.createCounter(BREAKER_METRIC.REJECTIONS); // pgpilot_breaker_rejections_total in Prometheus
 * ```
 */
export const BREAKER_METRIC = {
  /** Gauge, per lane: 0 closed (healthy), 1 half-open (degraded), 2 open (failed). */
  STATE: "pgpilot.breaker.state",
  /** Counter of state changes, attribute `pgpilot.breaker.state` = the new state. */
  TRANSITIONS: "pgpilot.breaker.transitions",
  /** Counter of calls rejected without I/O, attribute `pgpilot.failure.category` = what opened it. */
  REJECTIONS: "pgpilot.breaker.rejections",
} as const;

/** `breaker()`'s attribute keys. */
export const BREAKER_ATTR = {
  STATE: "pgpilot.breaker.state",
  CATEGORY: "pgpilot.failure.category",
} as const;

/** `retry()`'s counter: attempts beyond the first, by lane and reason. */
export const RETRY_METRIC = "pgpilot.retries";

/** `affinity()`'s metric names. */
export const AFFINITY_METRIC = {
  /** Counter: root operations routed, by `pgpilot.lane` and `pgpilot.affinity.reason`. */
  ROUTED: "pgpilot.affinity.routed",
  /** Gauge: query patterns currently learned as slow. */
  SLOW_PATTERNS: "pgpilot.affinity.slow_patterns",
} as const;

/** `adaptive()`'s metric names. */
export const ADAPTIVE_METRIC = {
  LIMIT: "pgpilot.adaptive.limit",
  ADJUSTMENTS: "pgpilot.adaptive.adjustments",
  QUEUED: "pgpilot.adaptive.queued",
  REJECTIONS: "pgpilot.adaptive.rejections",
  PREWARM_PROBES: "pgpilot.adaptive.prewarm.probes",
  LOAD_FACTOR: "pgpilot.load.factor",
  ARRIVAL_RATE: "pgpilot.load.arrival_rate",
  FORECAST: "pgpilot.load.forecast",
  NEEDED_CONNECTIONS: "pgpilot.load.needed_connections",
  EVENT_LOOP_LAG: "pgpilot.load.event_loop_lag",
} as const;

/** The span event tracing() adds to a query at or above the slow-query threshold. */
export const SLOW_QUERY_EVENT = "pgpilot.slow_query";
