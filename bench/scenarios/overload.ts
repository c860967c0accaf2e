/**
 * Overload: open-loop arrivals at twice the measured capacity. Without admission control every
 * call is accepted and waits (in postgres.js's pipelines and queue), so latency grows for as
 * long as the overload lasts. pgpilot's limiter admits what the pool can serve, queues a bounded
 * number and sheds the rest at once with `PoolSaturatedError`.
 *
 * Workload: a CPU-bound statement (`sum` over a 20k-row `generate_series`, about a millisecond
 * of server CPU), so capacity is the server's, not the network's. Capacity is measured first
 * (closed loop, 20 workers, raw `max: 10`); each variant then gets the same arrival rate.
 */
import postgres from "postgres";
import { adaptive } from "../../lib/interceptors/adaptive/index.ts";
import { pilot } from "../../lib/core/pilot.ts";
import { closedLoop, type LoadResult, openLoop } from "../lib/load.ts";
import type { Scenario, Table } from "../lib/scenario.ts";
import { fmt } from "../lib/stats.ts";

const work = (sql: postgres.Sql<any>) => sql`select sum(g) from generate_series(1, 20000) g`;

interface Variant {
  name: string;
  create(url: string): { sql: postgres.Sql<any>; end(): Promise<void> };
}

const variants: Variant[] = [
  {
    name: "postgres.js max 50",
    create(url) {
      const sql = postgres(url, { max: 50 });
      return { sql, end: () => sql.end({ timeout: 1 }) };
    },
  },
  {
    name: "postgres.js max 5",
    create(url) {
      const sql = postgres(url, { max: 5 });
      return { sql, end: () => sql.end({ timeout: 1 }) };
    },
  },
  {
    name: "pgpilot adaptive({ pipelineDepth: 16 }) on max 50",
    create(url) {
      const sql = pilot(postgres(url, { max: 50 }), { interceptors: [adaptive({ pipelineDepth: 16 })] });
      return { sql, end: () => sql.close({ timeout: 1 }) };
    },
  },
  {
    name: "pgpilot adaptive() on max 50 (defaults: no pipelining)",
    create(url) {
      const sql = pilot(postgres(url, { max: 50 }), { interceptors: [adaptive()] });
      return { sql, end: () => sql.close({ timeout: 1 }) };
    },
  },
  {
    name: "pgpilot adaptive({ maxQueue: 50, pipelineDepth: 16 }) on max 50",
    create(url) {
      const sql = pilot(postgres(url, { max: 50 }), { interceptors: [adaptive({ maxQueue: 50, pipelineDepth: 16 })] });
      return { sql, end: () => sql.close({ timeout: 1 }) };
    },
  },
];

export const scenario: Scenario = {
  name: "overload",
  title: "Overload: open-loop arrivals at 2× capacity",
  quick: true,
  async run(context) {
    const durationMs = context.quick ? 1500 : 10_000;
    const probe = postgres(context.url, { max: 10 });
    await closedLoop({ workers: 20, durationMs: 500, call: () => work(probe) });
    const capacity = (await closedLoop({ workers: 20, durationMs: context.quick ? 700 : 2000, call: () => work(probe) }))
      .throughput;
    await probe.end({ timeout: 1 });
    const rate = Math.round(2 * capacity);
    context.log(`capacity ≈ ${fmt(capacity)} q/s; offering ${fmt(rate)} q/s for ${durationMs / 1000} s`);

    const results: LoadResult[] = [];
    for (const [index, variant] of variants.entries()) {
      context.progress(index / variants.length, variant.name);
      const pool = variant.create(context.url);
      try {
        await Promise.all(Array.from({ length: 5 }, () => pool.sql`select 1`));
        results.push(await openLoop({ ratePerSecond: rate, durationMs, call: () => work(pool.sql) }));
      } finally {
        await pool.end();
      }
    }

    const bestRawP99 = Math.min(results[0]!.latency.p99, results[1]!.latency.p99);
    const rows = variants.map((variant, v) => {
      const r = results[v]!;
      const shed = (r.errors.POOL_SATURATED ?? 0) + (r.errors.POOL_TIMEOUT ?? 0);
      const other = r.failed - shed;
      return [
        variant.name,
        fmt(r.completed / (durationMs / 1000)),
        fmt(r.latency.p50),
        fmt(r.latency.p99),
        fmt(r.latency.p99 / bestRawP99, 2),
        `${shed}${other > 0 ? ` (+${other} other)` : ""}`,
        shed > 0 ? fmt(r.failedLatency.p99, 2) : "—",
      ];
    });
    const table: Table = {
      title: `Overload (${context.runtime}): ${fmt(rate)} arrivals/s for ${durationMs / 1000} s = 2 × measured capacity ${fmt(capacity)} q/s`,
      columns: ["variant", "admitted & completed /s", "p50 ms", "p99 ms", "p99 vs best raw", "shed", "shed p99 ms"],
      rows,
      note: "One run per variant, one after the other, same arrival schedule. Latency columns are for calls that " +
        "completed; \"shed\" calls failed with PoolSaturatedError (or PoolTimeoutError) and \"shed p99\" is how long " +
        "they took to fail. Raw pools accept everything, so their latency is the backlog built up during the run.",
    };
    return { tables: [table], data: { capacity, rate, durationMs, results: results.map(summary) } };
  },
};

function summary(r: LoadResult) {
  return { completed: r.completed, failed: r.failed, errors: r.errors, latency: r.latency, failedLatency: r.failedLatency };
}
