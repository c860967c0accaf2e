/**
 * Mixed workload (issue 6): 45 workers issue fast primary-key reads and writes while 10 workers run
 * a CPU-heavy analytic aggregate over 300 000 rows (real server work, not pg_sleep).
 *
 * Compared side by side, interleaved (A B C D A B C D …), each run on fresh clients:
 * - postgres.js, one pool of 20;
 * - pgpilot on one pool of 20 (the same chain as the lanes configurations, with one lane);
 * - pgpilot with lanes primary 16 + analytics 2, and 16 + 4 (both lanes on the same server),
 *   learned affinity moving the analytic pattern to the analytics lane;
 * - lanes 16 + 2 again with adaptive() after affinity (fixed limit = pool size), as in the
 *   recommended chain.
 *
 * Each run has a warm-up (same load, not measured: connections open, and the analytic pattern
 * is learned in it — how long that took is reported) and then the measured phase.
 * Every client sets `max_parallel_workers_per_gather = 0`, so one analytic query is one server
 * process in every configuration (parallel workers would escape a lane's size).
 */
import postgres from "postgres";
import type { Interceptor } from "../../lib/core/interceptor.ts";
import { affinity, type AffinityStats } from "../../lib/interceptors/affinity/index.ts";
import { pilot } from "../../lib/core/pilot.ts";
import { closedLoop, type LoadResult } from "../lib/load.ts";
import type { BenchContext, Scenario } from "../lib/scenario.ts";
import { fmt, median } from "../lib/stats.ts";

const FAST_WORKERS = 45;
const ANALYTIC_WORKERS = 10;
const ACCOUNTS = 10_000;
const EVENTS = 300_000;
const WRITE_SHARE = 0.2;
const SLOW_MS = 100;
const MIN_SAMPLES = 10;

interface Client {
  sql: any;
  close(): Promise<void>;
  /** Routing facts after the run (lanes only). */
  routing?(): { learnedAfterMs: number | undefined; onAnalyticsLane: number; slowPatterns: string[] };
}

interface Config {
  label: string;
  quick: boolean;
  create(url: string): Promise<Client>;
}

const raw = (max: number, url: string) =>
  postgres(url, { max, onnotice: () => {}, connection: { max_parallel_workers_per_gather: "0" } as Record<string, string> });

/**
 * adaptive() after affinity, as in the recommended chain, with a fixed limit equal to each lane's
 * pool: in flight never exceeds the connections (no pipelining in postgres.js).
 */
async function admission(): Promise<Interceptor[]> {
  const { adaptive } = await import("../../lib/interceptors/adaptive/index.ts");
  return [adaptive({ algorithm: "fixed", prewarm: false, queueTimeoutMs: 60_000, maxQueue: 10_000, pipelineDepth: 16 })];
}

function lanes(analytics: number, quick: boolean, limiter = false): Config {
  return {
    label: `pgpilot lanes 16 + analytics ${analytics}${limiter ? ", with adaptive({ pipelineDepth: 16 })" : ""}`,
    quick,
    create: async (url) => {
      const created = performance.now();
      let learnedAt: number | undefined;
      const routing = affinity({ reads: [], slow: "analytics", slowMs: SLOW_MS, minSamples: MIN_SAMPLES });
      routing.onPatternChange((change) => {
        if (change.to === "slow") learnedAt ??= performance.now();
      });
      const sql = pilot({ primary: raw(16, url), analytics: raw(analytics, url) }, {
        interceptors: [routing, ...limiter ? await admission() : []],
      });
      return {
        sql,
        close: () => sql.close({ timeout: 1 }),
        routing: () => {
          const stats = sql.stats().affinity as AffinityStats;
          return {
            learnedAfterMs: learnedAt === undefined ? undefined : learnedAt - created,
            onAnalyticsLane: stats.byLane.analytics?.["slow-pattern"] ?? 0,
            slowPatterns: stats.patterns.slow.map((p) => `${p.command} ${p.collection} p95 ${p.lastWindowP95Ms} ms`),
          };
        },
      };
    },
  };
}

const CONFIGS: Config[] = [
  {
    label: "postgres.js, one pool of 20",
    quick: true,
    create: async (url) => {
      const sql = raw(20, url);
      return { sql, close: () => sql.end({ timeout: 1 }) };
    },
  },
  {
    label: "pgpilot, one pool of 20",
    quick: true,
    create: async (url) => {
      const sql = pilot(raw(20, url), { interceptors: [affinity()] });
      return { sql, close: () => sql.close({ timeout: 1 }) };
    },
  },
  lanes(2, true),
  lanes(4, false),
  lanes(2, false, true),
];

async function setup(url: string): Promise<void> {
  const sql = raw(1, url);
  await sql.unsafe(`
    drop table if exists mw_accounts, mw_events;
    create table mw_accounts (id int primary key, balance bigint not null default 0);
    insert into mw_accounts select g, 0 from generate_series(1, ${ACCOUNTS}) g;
    create table mw_events (id bigint not null, account int not null, kind int not null, amount int not null, note text not null);
    insert into mw_events
      select g, g % ${ACCOUNTS}, g % 17, (g::bigint * 7919 % 1000)::int, md5(g::text) from generate_series(1, ${EVENTS}) g;
    analyze mw_accounts;
    analyze mw_events;
  `);
  await sql.end({ timeout: 1 });
}

async function teardown(url: string): Promise<void> {
  const sql = raw(1, url);
  await sql.unsafe("drop table if exists mw_accounts, mw_events");
  await sql.end({ timeout: 1 });
}

function fastCall(sql: any): Promise<unknown> {
  const id = 1 + Math.floor(Math.random() * ACCOUNTS);
  return Math.random() < WRITE_SHARE
    ? sql`update mw_accounts set balance = balance + 1 where id = ${id}`
    : sql`select balance from mw_accounts where id = ${id}`;
}

function analyticCall(sql: any): Promise<unknown> {
  return sql`
    select kind, count(*)::int as n, sum(amount)::bigint as total, avg(amount) as mean, max(note) as last
    from mw_events group by kind order by total desc`;
}

interface Run {
  fast: LoadResult;
  analytic: LoadResult;
  routing?: ReturnType<NonNullable<Client["routing"]>>;
}

function load(client: Client, durationMs: number): Promise<[LoadResult, LoadResult]> {
  return Promise.all([
    closedLoop({ workers: FAST_WORKERS, durationMs, call: () => fastCall(client.sql) }),
    closedLoop({ workers: ANALYTIC_WORKERS, durationMs, call: () => analyticCall(client.sql) }),
  ]);
}

async function runOnce(config: Config, url: string, warmupMs: number, durationMs: number): Promise<Run> {
  const client = await config.create(url);
  try {
    await load(client, warmupMs);
    const [fast, analytic] = await load(client, durationMs);
    return { fast, analytic, routing: client.routing?.() };
  } finally {
    await client.close();
  }
}

export const scenario: Scenario = {
  name: "mixed-workload",
  title: "Mixed workload: fast queries next to analytic ones, one pool vs lanes with learned affinity",
  quick: true,
  async run(context: BenchContext) {
    const rounds = context.quick ? 1 : 2;
    const warmupMs = 1_000;
    const durationMs = context.quick ? 3_000 : 3_500;
    const configs = CONFIGS.filter((config) => !context.quick || config.quick);
    await setup(context.url);
    const runs = new Map<string, Run[]>(configs.map((config) => [config.label, []]));
    try {
      let step = 0;
      for (let round = 0; round < rounds; round++) {
        for (const config of configs) {
          context.progress(step++ / (rounds * configs.length), `${config.label} (round ${round + 1})`);
          const run = await runOnce(config, context.url, warmupMs, durationMs);
          runs.get(config.label)!.push(run);
          if (run.routing) context.log(`${config.label}: ${JSON.stringify(run.routing)}`);
        }
      }
    } finally {
      await teardown(context.url);
    }

    const summary = configs.map((config) => {
      const results = runs.get(config.label)!;
      const learned = results.map((r) => r.routing?.learnedAfterMs).filter((ms): ms is number => ms !== undefined);
      return {
        label: config.label,
        fastThroughput: median(results.map((r) => r.fast.throughput)),
        fastP50: median(results.map((r) => r.fast.latency.p50)),
        fastP99: median(results.map((r) => r.fast.latency.p99)),
        analytic: median(results.map((r) => r.analytic.completed)),
        analyticP50: median(results.map((r) => r.analytic.latency.p50)),
        failed: results.reduce((n, r) => n + r.fast.failed + r.analytic.failed, 0),
        learnedAfterMs: results[0]!.routing === undefined ? undefined : learned.length === results.length ? median(learned) : NaN,
      };
    });
    const singles = summary.slice(0, 2);
    const bestThroughput = Math.max(...singles.map((s) => s.fastThroughput));
    const bestP99 = Math.min(...singles.map((s) => s.fastP99));
    return {
      tables: [{
        title: `Mixed workload: ${FAST_WORKERS} fast + ${ANALYTIC_WORKERS} analytic workers, ` +
          `${durationMs / 1000} s measured after ${warmupMs / 1000} s warm-up, ${rounds} round(s)`,
        columns: [
          "configuration",
          "fast q/s",
          "× best one pool",
          "fast p50 ms",
          "fast p99 ms",
          "p99 × best one pool",
          "analytic done",
          "analytic p50 ms",
          "learned after ms",
          "failed",
        ],
        rows: summary.map((s) => [
          s.label,
          fmt(s.fastThroughput, 0),
          fmt(s.fastThroughput / bestThroughput, 2),
          fmt(s.fastP50, 2),
          fmt(s.fastP99, 1),
          fmt(s.fastP99 / bestP99, 2),
          fmt(s.analytic, 0),
          fmt(s.analyticP50, 0),
          s.learnedAfterMs === undefined ? "—" : Number.isNaN(s.learnedAfterMs) ? "not learned" : fmt(s.learnedAfterMs, 0),
          s.failed,
        ]),
        note: `Fast: primary-key read (80%) or update (20%) on ${ACCOUNTS.toLocaleString("en-US")} rows. Analytic: ` +
          `group-by aggregate over ${EVENTS.toLocaleString("en-US")} rows (~45 ms alone). pgpilot chain: affinity() ` +
          "(plus adaptive() with a fixed limit = each lane's pool where the row says so). Lanes are two postgres.js pools on " +
          `the same server; the analytic pattern moves to the analytics lane once a window of ${MIN_SAMPLES} executions has ` +
          `p95 > ${SLOW_MS} ms, during the warm-up ("learned after": from client creation). Medians over rounds; ` +
          "configurations interleaved; fresh clients per run; no parallel query workers.",
      }],
      data: { runs: Object.fromEntries(runs), summary },
    };
  },
};
