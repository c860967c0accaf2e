/**
 * The options and `stats()` section of a lane's pipeline (lib/pipeline/pipeline.ts).
 *
 * @module
 */
import type { ReservedSql } from "postgres";
import type { RawQuery } from "../core/postgres-internals.ts";

/** Options of a {@link Pipeline}. */
export interface PipelineOptions {
  /** Lane name, for messages. */
  lane: string;
  /** Queries in flight per reserved connection before another is reserved. */
  depth: number;
  /** The lane's postgres.js `max`. */
  poolMax: number;
  /** Most connections reserved at once (the rest of the pool stays for transactions and the like). */
  maxConnections: number;
  /** Reserve one connection of the lane's pool. */
  reserve: () => Promise<ReservedSql<any>>;
  /** The lane's pool handler, for queries a lost connection never sent. */
  fallback?: (query: RawQuery) => void;
}

/** A lane's pipeline section of `stats()`. */
export interface PipelineStats {
  depth: number;
  maxConnections: number;
  /** Reserved connections taking queries now. */
  connections: number;
  /** Reservations under way. */
  reserving: number;
  /** Queries in flight on reserved connections. */
  inFlight: number;
  /** Backend pids of the reserved connections. */
  pids: number[];
  /** Queries per connection now: `depth`, less while statements are slow (see {@link Pipeline}). */
  effectiveDepth: number;
  /** Shortest time between completions on one connection, last monitor interval (ms). */
  serviceMs: number;
  /** Totals since start: reservations made, released, lost to connection errors, failed. */
  reserved: number;
  released: number;
  lost: number;
  failures: number;
  /** Queries written again after the server refused their cached statement before running them. */
  resent: number;
  /** Pipelining turned itself off: postgres.js's internals are not what pgpilot expects. */
  disabled: boolean;
}
