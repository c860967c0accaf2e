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
