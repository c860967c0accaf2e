/**
 * The seed's methodology, for real: 10 / 25 / 50 concurrent users, each running 20 queries of
 * one kind (SELECT by key, INSERT, UPDATE by key, a 3-statement TRANSACTION), 5 iterations.
 * Fixed pool 5 (raw postgres.js `max: 5`) vs fixed 25 (raw `max: 25`) vs pgpilot
 * `adaptive({ min: 5, pipelineDepth: 16 })` on a `max: 25` pool — the seed's 5–25 range,
 * pipelining onto reserved connections (opt-in) — and `adaptive({ min: 5 })`, the defaults
 * (no pipelining), in the fourth column.
 *
 * Each iteration makes fresh pools, opens all their connections, then runs every level and kind on them in the
 * same order, the three variants interleaved cell by cell — one pool per variant per iteration,
 * as an application would keep it.
 */
import postgres from "postgres";
import { adaptive } from "../../lib/interceptors/adaptive/index.ts";
import { pilot } from "../../lib/core/pilot.ts";
import { closedLoop } from "../lib/load.ts";
import type { Scenario, Table } from "../lib/scenario.ts";
import { fmt, median, spread } from "../lib/stats.ts";

const KINDS = ["SELECT", "INSERT", "UPDATE", "TRANSACTION"] as const;
type Kind = (typeof KINDS)[number];
const QUERIES_PER_USER = 20;
const ACCOUNTS = 10_000;

interface Variant {
  name: string;
  create(url: string): { sql: postgres.Sql<any>; max: number; end(): Promise<void> };
}

const variants: Variant[] = [
  {
    name: "fixed 5",
    create(url) {
      const sql = postgres(url, { max: 5 });
      return { sql, max: 5, end: () => sql.end({ timeout: 1 }) };
    },
  },
  {
    name: "fixed 25",
    create(url) {
      const sql = postgres(url, { max: 25 });
      return { sql, max: 25, end: () => sql.end({ timeout: 1 }) };
    },
  },
  {
    name: "adaptive 5–25, pipelineDepth 16",
    create(url) {
      const sql = pilot(postgres(url, { max: 25 }), { interceptors: [adaptive({ min: 5, pipelineDepth: 16 })] });
      return { sql, max: 25, end: () => sql.close({ timeout: 1 }) };
    },
  },
  {
    name: "pgpilot adaptive 5–25 (defaults: no pipelining)",
    create(url) {
      const sql = pilot(postgres(url, { max: 25 }), { interceptors: [adaptive({ min: 5 })] });
      return { sql, max: 25, end: () => sql.close({ timeout: 1 }) };
    },
  },
];

function statement(sql: postgres.Sql<any>, kind: Kind, user: number, i: number): Promise<unknown> {
  const id = ((user * 7919 + i * 104_729) % ACCOUNTS) + 1;
  switch (kind) {
    case "SELECT":
      return sql`select id, owner, balance from seed_accounts where id = ${id}`;
    case "INSERT":
      return sql`insert into seed_events (account_id, amount) values (${id}, ${i})`;
    case "UPDATE":
      return sql`update seed_accounts set balance = balance + 1 where id = ${id}`;
    case "TRANSACTION":
      return sql.begin(async (tx) => {
        await tx`select balance from seed_accounts where id = ${id} for update`;
        await tx`update seed_accounts set balance = balance - 1 where id = ${id}`;
        await tx`insert into seed_events (account_id, amount) values (${id}, -1)`;
      });
  }
}

export const scenario: Scenario = {
  name: "seed-methodology",
  title: "The seed's methodology: 10/25/50 users × 20 queries × SELECT/INSERT/UPDATE/TRANSACTION",
  quick: true,
  async run(context) {
    const levels = context.quick ? [10, 50] : [10, 25, 50];
    const iterations = context.quick ? 1 : 5;
    const setup = postgres(context.url, { max: 1, onnotice: () => {} });
    await setup`drop table if exists seed_events`;
    await setup`drop table if exists seed_accounts`;
    await setup`create table seed_accounts (id int primary key, owner text not null, balance bigint not null default 0)`;
    await setup`insert into seed_accounts (id, owner) select g, 'user ' || g from generate_series(1, ${ACCOUNTS}) g`;
    await setup`create table seed_events (id bigserial primary key, account_id int not null, amount int not null, at timestamptz not null default now())`;
    await setup.end({ timeout: 1 });

    // results[variant][level][kind] = throughput per iteration (statements or transactions per second)
    const results = variants.map(() => levels.map(() => KINDS.map(() => [] as number[])));
    const total = iterations * levels.length * KINDS.length * variants.length;
    let step = 0;
    for (let iteration = 0; iteration < iterations; iteration++) {
      const pools = variants.map((variant) => variant.create(context.url));
      try {
        // Open every connection first (max concurrent queries), so no cell pays for connecting.
        await Promise.all(pools.map((pool) => Promise.all(Array.from({ length: pool.max }, () => pool.sql`select 1`))));
        for (const [l, users] of levels.entries()) {
          for (const [k, kind] of KINDS.entries()) {
            for (const [v, pool] of pools.entries()) {
              context.progress(step++ / total, `iteration ${iteration + 1}, ${users} users, ${kind}`);
              const result = await closedLoop({
                workers: users,
                callsPerWorker: QUERIES_PER_USER,
                call: (user, i) => statement(pool.sql, kind, user, i),
              });
              if (result.failed > 0) throw new Error(`${variants[v]!.name} ${kind}: ${JSON.stringify(result.errors)}`);
              results[v]![l]![k]!.push(result.throughput);
            }
          }
        }
      } finally {
        await Promise.all(pools.map((pool) => pool.end()));
      }
    }

    const rows: (string | number)[][] = [];
    for (const [l, users] of levels.entries()) {
      for (const [k, kind] of KINDS.entries()) {
        const medians = variants.map((_, v) => median(results[v]![l]![k]!));
        const bestFixed = Math.max(medians[0]!, medians[1]!);
        // Per-iteration ratio to the better fixed pool of the same iteration.
        const ratios = results[2]![l]![k]!.map((value, i) => value / Math.max(results[0]![l]![k]![i]!, results[1]![l]![k]![i]!));
        const [low, high] = spread(ratios);
        rows.push([
          users,
          kind,
          ...medians.map((m) => fmt(m)),
          medians[0]! >= medians[1]! ? "fixed 5" : "fixed 25",
          `${fmt(median(ratios), 2)} (${fmt(low, 2)}–${fmt(high, 2)})`,
          fmt(medians[2]! / bestFixed, 2),
          fmt(medians[3]! / bestFixed, 2),
        ]);
      }
    }
    const table: Table = {
      title: `Seed methodology (${context.runtime}): ${QUERIES_PER_USER} queries per user, ${iterations} iterations, throughput per second`,
      columns: ["users", "kind", ...variants.map((v) => v.name), "best fixed", "depth 16 / best (per iteration)", "depth 16 / best (medians)", "defaults / best (medians)"],
      rows,
      note: "Statements per second (transactions per second for TRANSACTION: 3 statements each), median of the iterations. " +
        "Each cell is one closed-loop burst of users × 20 calls, so it includes the ramp-up and the tail. " +
        "The ratio column divides adaptive by the better fixed pool of the same iteration (median, range).",
    };
    return { tables: [table], data: { levels, iterations, kinds: KINDS, variants: variants.map((v) => v.name), results } };
  },
};
