/**
 * A lane behind a real PgBouncer (apt) in transaction mode, in front of the shared test server:
 * queries, transactions and the whole interceptor stack work with postgres.js
 * `prepare: false`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import type { Interceptor } from "../../../lib/core/interceptor.ts";
import { adaptive } from "../../../lib/interceptors/adaptive/index.ts";
import { affinity, type AffinityStats } from "../../../lib/interceptors/affinity/index.ts";
import { breaker } from "../../../lib/interceptors/breaker/index.ts";
import { deadline } from "../../../lib/interceptors/deadline/index.ts";
import { monitor } from "../../../lib/interceptors/monitor/index.ts";
import { retry } from "../../../lib/interceptors/retry/index.ts";
import { tracing } from "../../../lib/interceptors/tracing/index.ts";
import { pilot } from "../../../lib/core/pilot.ts";
import { testUrl } from "../../support/db.ts";
import { Cleanup } from "../../support/kit.ts";
import { ensurePgbouncer, type PgbouncerServer, startPgbouncer } from "../../support/pgbouncer.ts";

const found = ensurePgbouncer();
const missing = "missing" in found ? found.missing : undefined;
if (missing !== undefined) console.warn(`[affinity] skipping pgbouncer tests: ${missing}`);

const POOL_SIZE = 2;
let bouncer: PgbouncerServer;
/** Every pilot a test opened, closed after all. */
const clients = new Cleanup();

function lanes() {
  return {
    primary: postgres(testUrl(), { max: 4, onnotice: () => {} }),
    // Transaction pooling hands each transaction (or lone statement) any server connection, so
    // named prepared statements would not be found: postgres.js must not prepare.
    bouncer: postgres(bouncer.url, { max: 8, prepare: false, onnotice: () => {} }),
  };
}

/** The recommended chain around affinity: `[tracing, monitor, affinity, deadline, retry, breaker, adaptive]`. */
function fullStack(routing: Interceptor): { chain: Interceptor[]; names: string[] } {
  const chain = [tracing(), monitor(), routing, deadline(), retry(), breaker(), adaptive()];
  return { chain, names: chain.map((interceptor) => interceptor.name) };
}

const rows = async (query: unknown): Promise<Record<string, unknown>[]> =>
  [...(await query) as Record<string, unknown>[]];

describe.skipIf(missing !== undefined)("a lane behind pgbouncer (transaction mode)", () => {
  const table = `bouncer_${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    const url = new URL(testUrl());
    bouncer = await startPgbouncer({
      target: { host: url.hostname, port: Number(url.port || 5432) },
      poolMode: "transaction",
      poolSize: POOL_SIZE,
    });
    const direct = postgres(testUrl(), { max: 1, onnotice: () => {} });
    await direct.unsafe(`create table ${table} (id int primary key, v text not null)`);
    await direct.end({ timeout: 1 });
  }, 60_000);

  afterAll(async () => {
    try {
      await clients.run();
    } finally {
      const direct = postgres(testUrl(), { max: 1, onnotice: () => {} });
      await direct.unsafe(`drop table if exists ${table}`);
      await direct.end({ timeout: 1 });
      await bouncer?.destroy();
    }
  });

  test("reads go through pgbouncer, multiplexed onto its few server connections", async () => {
    const sql = pilot(lanes(), { interceptors: [affinity({ reads: "bouncer" })] });
    clients.track(sql);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => sql`select pg_backend_pid() as pid, ${i}::int + ${1}::int as n, ${"x"}::text as s`),
    );
    expect(results.map((r) => r[0]!.n)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // 8 client connections, at most POOL_SIZE server backends: the queries went through pgbouncer.
    expect(new Set(results.map((r) => r[0]!.pid)).size).toBeLessThanOrEqual(POOL_SIZE);
    const stats = sql.stats().affinity as AffinityStats;
    expect(stats.byLane).toEqual({ bouncer: { read: 40 } });
  });

  test("transactions on the pgbouncer lane keep one server connection each; rollback discards", async () => {
    const sql = pilot(lanes(), { interceptors: [affinity({ reads: "bouncer" })] });
    clients.track(sql);
    const viaBouncer = sql.lane("bouncer");
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        viaBouncer.begin(async (tx) => {
          const [first] = await tx`select pg_backend_pid() as pid`;
          await tx`select set_config('application_name', ${`tx-${i}`}, true)`;
          await tx`insert into ${tx(table)} (id, v) values (${i}, ${`v${i}`})`;
          const [seen] = await tx`select count(*)::int as n from ${tx(table)} where id = ${i}`;
          const [last] = await tx`select pg_backend_pid() as pid, current_setting('application_name') as app`;
          expect([seen!.n, last!.pid, last!.app]).toEqual([1, first!.pid, `tx-${i}`]);
          if (i % 3 === 0) throw new Error("roll back");
          return i;
        })
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(
      Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? "rejected" : "fulfilled")),
    );
    const kept = await rows(sql`select id from ${sql(table)} order by id`);
    expect(kept.map((r) => r.id)).toEqual([1, 2, 4, 5, 7, 8, 10, 11]);
  });

  test("the interceptor stack works on a pgbouncer lane", async () => {
    const { chain, names } = fullStack(affinity({ reads: "bouncer" }));
    const sql = pilot(lanes(), { name: "bouncer-stack", interceptors: chain });
    clients.track(sql);
    const reads = await Promise.all(Array.from({ length: 20 }, (_, i) => sql`select ${i}::int as i`));
    expect(reads.map((r) => r[0]!.i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const total = await sql.lane("bouncer").begin(async (tx) => {
      await tx`insert into ${tx(table)} (id, v) values (${100}, ${"a"})`;
      await tx`update ${tx(table)} set v = v || '!' where id = ${100}`;
      return tx`select v from ${tx(table)} where id = ${100}`;
    });
    expect(await rows(total)).toEqual([{ v: "a!" }]);
    // Read-your-writes: the transaction went through pgbouncer; its table is now read from the primary.
    expect(await rows(sql`select v from ${sql(table)} where id = ${100}`)).toEqual([{ v: "a!" }]);
    const stats = sql.stats();
    for (const name of names) {
      const interceptor = chain.find((i) => i.name === name)!;
      if (interceptor.stats) expect(stats[name]).toBeDefined();
    }
    const routed = (stats.affinity as AffinityStats).byLane;
    // Reads the limiter would have queued (adaptive says the lane is saturated) fall back to the primary.
    expect((routed.bouncer?.read ?? 0) + (routed.primary?.fallback ?? 0)).toBe(20);
    expect(routed.bouncer?.read).toBeGreaterThan(0);
    expect(routed.bouncer?.override).toBe(1);
    // Latency votes (monitor's p95 over the last second) depend on the machine's load; what must
    // hold is that nothing counts the pgbouncer lane as failing.
    const health = sql.health() as { status: string; checks?: Record<string, { status: string }> };
    expect(health.status).not.toBe("failed");
    expect(health.checks?.affinity?.status).toBe("healthy");
    if (health.checks?.breaker) expect(health.checks.breaker.status).toBe("healthy");
    console.info(`[affinity] pgbouncer lane checked with the stack: ${names.join(", ")}`);
  });
});
