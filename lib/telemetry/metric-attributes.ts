/**
 * Metric attribute sets: built once and reused, so recording a metric allocates nothing, and
 * bounded, so label sets cannot grow without limit.
 *
 * Only allow-listed, low-cardinality attributes are used: `db.system.name`, `db.namespace`,
 * `db.operation.name`, `db.collection.name`, `db.response.status_code`, `error.type`,
 * `server.address`, `server.port`, `pgpilot.lane`, `db.client.connection.pool.name`. Never SQL
 * text, parameter values or credentials.
 *
 * Bound: at most `limit` distinct sets with a table name; past that, new combinations drop
 * `db.collection.name` (another `limit` at most); past that, they fold into one `_OTHER`
 * operation per lane and outcome. Tables named by generated SQL (`tmp_123…`) therefore cannot
 * blow up a time-series database.
 *
 * @module
 */
import type { Attributes } from "@opentelemetry/api";
import { errorCode, isSqlState } from "../shared/classify.ts";
import type { LaneInfo } from "../core/interceptor.ts";
import type { OperationAnalysis } from "../core/operation.ts";
import { ATTR, DB_SYSTEM } from "./names.ts";

/**
 * The `error.type` value for errors without a usable code (semconv's fallback).
 *
 * @example
 * ```ts
 * errorAttributes(new Error("x")).type === OTHER; // true
 * ```
 */
export const OTHER = "_OTHER";

// Codes that are not SQLSTATEs but name a failure class: postgres.js (CONNECTION_CLOSED),
// sockets (ECONNRESET), pgpilot (POOL_TIMEOUT). Anything else would be free text.
const CODE_SHAPE = /^[A-Z][A-Z0-9_]{1,39}$/;

/**
 * `error.type` and `db.response.status_code` of an error: the SQLSTATE when the server sent one,
 * else a code-shaped `code` (postgres.js, socket or pgpilot), else `_OTHER`. Never the message:
 * PostgreSQL puts values in its messages (`invalid input syntax for type integer: "…"`).
 *
 * @example
 * ```ts
 * errorAttributes({ code: "23505" }); // { type: "23505", status: "23505" }
 * errorAttributes({ code: "ECONNRESET" }); // { type: "ECONNRESET", status: undefined }
 * errorAttributes(new Error("boom")); // { type: "_OTHER", status: undefined }
 * ```
 */
export function errorAttributes(error: unknown): { type: string; status: string | undefined } {
  const code = errorCode(error);
  if (isSqlState(code)) return { type: code, status: code };
  if (code !== undefined && CODE_SHAPE.test(code)) return { type: code, status: undefined };
  return { type: OTHER, status: undefined };
}

interface PerAnalysis {
  lane: string;
  attributes: Attributes;
  others: Map<string, Attributes> | undefined;
}

/**
 * Cached, bounded attribute sets for the operation duration histogram and the pool metrics.
 *
 * @example
 * ```ts
 * const sets = new MetricAttributes("main", context.lanes, 500);
 * histogram.record(seconds, sets.success(op.analysis, op.lane));
 * ```
 */
export class MetricAttributes {
  readonly #pool: string;
  readonly #lanes: ReadonlyMap<string, LaneInfo>;
  readonly #limit: number;
  readonly #bases = new Map<string, Attributes>();
  readonly #poolSets = new Map<string, Attributes>();
  readonly #sets = new Map<string, Attributes>();
  readonly #byAnalysis = new WeakMap<OperationAnalysis, PerAnalysis>();
  /** Combinations that lost detail to the bound. */
  folded: number = 0;

  constructor(poolName: string, lanes: ReadonlyMap<string, LaneInfo>, limit: number) {
    this.#pool = poolName;
    this.#lanes = lanes;
    this.#limit = limit;
  }

  /** Number of distinct attribute sets built for operations (bounded by 2 × limit + 2 × lanes). */
  get size(): number {
    return this.#sets.size;
  }

  /** `{ pool name, lane }`: the attributes of the `db.client.connection.*` metrics. */
  pool(lane: string): Attributes {
    let attributes = this.#poolSets.get(lane);
    if (attributes === undefined) {
      attributes = Object.freeze({ [ATTR.POOL_NAME]: this.#pool, [ATTR.LANE]: lane });
      if (this.#poolSets.size < this.#limit) this.#poolSets.set(lane, attributes);
    }
    return attributes;
  }

  /** Attributes of a successful operation: cached per analysis object and lane. */
  success(analysis: OperationAnalysis, lane: string): Attributes {
    const cached = this.#byAnalysis.get(analysis);
    if (cached !== undefined) {
      if (cached.lane === lane) return cached.attributes;
      const other = cached.others?.get(lane);
      if (other !== undefined) return other;
      const attributes = this.#resolve(analysis, lane, undefined, undefined);
      (cached.others ??= new Map()).set(lane, attributes);
      return attributes;
    }
    const attributes = this.#resolve(analysis, lane, undefined, undefined);
    this.#byAnalysis.set(analysis, { lane, attributes, others: undefined });
    return attributes;
  }

  /** Attributes of a failed operation (`error.type`, `db.response.status_code` added). */
  failure(analysis: OperationAnalysis, lane: string, error: unknown): Attributes {
    const { type, status } = errorAttributes(error);
    return this.#resolve(analysis, lane, type, status);
  }

  #resolve(analysis: OperationAnalysis, lane: string, type: string | undefined, status: string | undefined): Attributes {
    const command = analysis.command;
    const collection = analysis.collection;
    const tail = `\0${type ?? ""}\0${status ?? ""}`;
    const full = `${lane}\0${command}\0${collection ?? ""}${tail}`;
    let attributes = this.#sets.get(full);
    if (attributes !== undefined) return attributes;
    if (this.#sets.size < this.#limit) return this.#add(full, lane, command, collection, type, status);
    this.folded++;
    const coarse = `${lane}\0${command}\0${tail}`;
    attributes = this.#sets.get(coarse);
    if (attributes !== undefined) return attributes;
    if (this.#sets.size < 2 * this.#limit) return this.#add(coarse, lane, command, undefined, type, status);
    const overflow = `${lane}\0${OTHER}\0\0${type === undefined ? "" : OTHER}\0`;
    return this.#sets.get(overflow) ??
      this.#add(overflow, lane, OTHER, undefined, type === undefined ? undefined : OTHER, undefined);
  }

  #add(
    key: string,
    lane: string,
    command: string,
    collection: string | undefined,
    type: string | undefined,
    status: string | undefined,
  ): Attributes {
    const attributes: Attributes = { ...this.#base(lane), [ATTR.DB_OPERATION_NAME]: command };
    if (collection !== undefined) attributes[ATTR.DB_COLLECTION_NAME] = collection;
    if (type !== undefined) attributes[ATTR.ERROR_TYPE] = type;
    if (status !== undefined) attributes[ATTR.DB_RESPONSE_STATUS_CODE] = status;
    Object.freeze(attributes);
    this.#sets.set(key, attributes);
    return attributes;
  }

  #base(lane: string): Attributes {
    let base = this.#bases.get(lane);
    if (base === undefined) {
      const info = this.#lanes.get(lane);
      base = { [ATTR.DB_SYSTEM_NAME]: DB_SYSTEM };
      if (info !== undefined) {
        if (info.database !== "") base[ATTR.DB_NAMESPACE] = info.database;
        base[ATTR.SERVER_ADDRESS] = info.host;
        base[ATTR.SERVER_PORT] = info.port;
      }
      base[ATTR.LANE] = lane;
      base[ATTR.POOL_NAME] = this.#pool;
      this.#bases.set(lane, base);
    }
    return base;
  }
}
