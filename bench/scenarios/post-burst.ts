/**
 * Post-burst recovery: 10 workers, then 50, then 10 again, on the same pool (`max: 10`,
 * `select 1`). Raw postgres.js pipelines the burst onto busy connections and stays slower
 * afterwards. pgpilot's `adaptive()` pipelines too, by default, but onto connections it took
 * out of the pool with `sql.reserve()`, which never pass through the pool's queues; with
 * `pipelineDepth: 0` it does not pipeline at all and keeps in flight at the pool size.
 *
 * Why raw slows down (postgres.js 3.4.9, src/queue.js): `shift()` leaves the consumed slots in
 * the array and only resets it when the queue empties through `shift()`; `remove()` is an
 * `indexOf` over the whole array. Pipelining takes connections from the `busy` queue with
 * `shift()`, so every pipelined query adds a dead slot that each later `move()` of a connection
 * scans — the slowdown grows with the number of queries pipelined, and stays.
 *
 * Rounds use fresh pools and interleave the variants phase by phase (A B C, A B C, …). A pool
 * that never saw the burst is measured around the third phases, as the reference for them.
 */
import postgres from "postgres";
import { adaptive } from "../../lib/interceptors/adaptive/index.ts";
import { pilot } from "../../lib/core/pilot.ts";
import { closedLoop } from "../lib/load.ts";
import type { Scenario, Table } from "../lib/scenario.ts";
import { fmt, median, spread } from "../lib/stats.ts";

const MAX = 10;
const PHASES = [10, 50, 10] as const;

interface Variant {
  name: string;
  create(url: string): { sql: postgres.Sql<any>; end(): Promise<void> };
}

const variants: Variant[] = [
  {
    name: "postgres.js",
    create(url) {
      const sql = postgres(url, { max: MAX });
      return { sql, end: () => sql.end({ timeout: 1 }) };
    },
  },
  {
    name: "pgpilot adaptive({ pipelineDepth: 16 })",
    create(url) {
      const sql = pilot(postgres(url, { max: MAX }), { interceptors: [adaptive({ pipelineDepth: 16 })] });
      return { sql, end: () => sql.close({ timeout: 1 }) };
    },
  },
  {
    name: "pgpilot adaptive() (defaults: no pipelining)",
    create(url) {
      const sql = pilot(postgres(url, { max: MAX }), { interceptors: [adaptive()] });
      return { sql, end: () => sql.close({ timeout: 1 }) };
    },
  },
];

export const scenario: Scenario = {
  name: "post-burst",
  title: "Post-burst recovery: 10 → 50 → 10 workers on one pool (max 10)",
  quick: true,
  async run(context) {
    const rounds = context.quick ? 1 : 2;
    // The burst is the longer phase: postgres.js's loss grows with the queries it pipelines.
    const phaseMs = context.quick ? [800, 2000, 800] : [2500, 6000, 2500];
    // throughput[variant][round] = [phase1, burst, phase3]
    const throughput = variants.map(() => [] as number[][]);
    const p99 = variants.map(() => [] as number[][]);
    // A pool that never saw the burst, measured right before and right after the third phases:
    // the machine's load at that moment, so each pool's third phase is compared with it.
    const control: number[] = [];
    const steps = rounds * (PHASES.length * variants.length + 2);
    let step = 0;
    const load = (sql: postgres.Sql<any>, workers: number, durationMs: number) =>
      closedLoop({ workers, durationMs, call: () => sql`select 1` });
    for (let round = 0; round < rounds; round++) {
      const pools = variants.map((variant) => variant.create(context.url));
      const fresh = variants[0]!.create(context.url);
      try {
        // Open every connection first, so phase 1 does not pay for connecting.
        await Promise.all([...pools, fresh].map((pool) => Promise.all(Array.from({ length: MAX }, () => pool.sql`select 1`))));
        pools.forEach((_, v) => (throughput[v]![round] = [], p99[v]![round] = []));
        const controlRuns: number[] = [];
        for (const [phase, workers] of PHASES.entries()) {
          if (phase === 2) controlRuns.push((await load(fresh.sql, workers, phaseMs[phase]!)).throughput);
          for (const [v, pool] of pools.entries()) {
            context.progress(step++ / steps, `round ${round + 1}, ${workers} workers`);
            const result = await load(pool.sql, workers, phaseMs[phase]!);
            throughput[v]![round]!.push(result.throughput);
            p99[v]![round]!.push(result.latency.p99);
          }
          if (phase === 2) controlRuns.push((await load(fresh.sql, workers, phaseMs[phase]!)).throughput);
        }
        control.push((controlRuns[0]! + controlRuns[1]!) / 2);
        step += 2;
      } finally {
        await Promise.all([...pools, fresh].map((pool) => pool.end()));
      }
    }

    const range = (values: number[]) => {
      const [low, high] = spread(values);
      return `${fmt(median(values) * 100, 0)} %${rounds > 1 ? ` (${fmt(low * 100, 0)}–${fmt(high * 100, 0)})` : ""}`;
    };
    const rows = variants.map((variant, v) => {
      const runs = throughput[v]!;
      return [
        variant.name,
        fmt(median(runs.map((r) => r[0]!))),
        fmt(median(runs.map((r) => r[1]!))),
        fmt(median(runs.map((r) => r[2]!))),
        range(runs.map((r, round) => r[2]! / control[round]!)),
        range(runs.map((r) => r[2]! / r[0]!)),
        fmt(median(p99[v]!.map((r) => r[2]!)), 2),
      ];
    });
    rows.push(["fresh postgres.js pool (never burst), third-phase slot", "—", "—", fmt(median(control)), "100 %", "—", "—"]);
    const pilotVsRaw = throughput[1]!.map((r, round) => r[2]! / throughput[0]![round]![2]!);
    const table: Table = {
      title: `Post-burst recovery (${context.runtime}, max ${MAX}, select 1, phases ${phaseMs.map((ms) => ms / 1000).join(" / ")} s, ${rounds} round${rounds > 1 ? "s" : ""})`,
      columns: ["variant", "10 workers q/s", "50 workers q/s", "10 again q/s", "10 again vs fresh pool", "10 again vs own 1st", "p99 10 again (ms)"],
      rows,
      note: `Medians over ${rounds} round(s) of fresh pools, variants interleaved phase by phase. ` +
        `"vs fresh pool" divides each pool's third phase by a pool that never saw the burst, measured just before and ` +
        `just after the third phases (their mean): the same machine load, a different history. "vs own 1st" also moves with ` +
        `the machine's load between phases. After the burst, pgpilot adaptive() does ${fmt(median(pilotVsRaw), 2)}× raw ` +
        `postgres.js's throughput on the same workload. postgres.js's loss grows with the number of queries pipelined during the burst.`,
    };
    return { tables: [table], data: { phases: PHASES, phaseMs, rounds, throughput, p99, control } };
  },
};
