/**
 * affinity() against a real streaming replica (pg_basebackup -R) of a server of its own:
 * where reads and writes land, read-your-writes with replay paused, fallback while the replica
 * is down and its return, and a pattern made slow by pg_sleep moving to the analytics lane.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { classify } from "../../../lib/shared/classify.ts";
import type { Interceptor, PilotContext } from "../../../lib/core/interceptor.ts";
import type { Operation } from "../../../lib/core/operation.ts";
import { affinity, type AffinityStats, type PatternChange } from "../../../lib/interceptors/affinity/index.ts";
import { pilot } from "../../../lib/core/pilot.ts";
import { ensurePostgresBinaries, type PostgresServer, startPostgres, startReplica } from "../../support/postgres.ts";
import { Cleanup, metricReader, until } from "../../support/kit.ts";

const unavailable = (() => {
  try {
    const bindir = ensurePostgresBinaries();
    return existsSync(join(bindir, "pg_basebackup")) ? undefined : `no pg_basebackup in ${bindir}`;
  } catch (error) {
    return (error as Error).message;
  }
})();
if (unavailable !== undefined) console.warn(`[affinity] skipping streaming-replica tests: ${unavailable}`);

let primary: PostgresServer;
let replica: PostgresServer;
/** The servers (started in beforeAll) and every pilot a test opened, closed newest first after all. */
const cleanup = new Cleanup();

/** Fresh lanes; each lane names itself in application_name so a query can tell where it ran. */
function lanes() {
  const lane = (url: string, name: string, max: number) =>
    postgres(url, { max, onnotice: () => {}, connection: { application_name: `lane-${name}` } });
  return {
    primary: lane(primary.url, "primary", 4),
    replica: lane(replica.url, "replica", 16),
    analytics: lane(primary.url, "analytics", 2),
  };
}

/**
 * Lanes with every connection open: a query that has to wait for a new connection takes the
 * connection's setup time too, which would count as the pattern's latency.
 */
async function warmLanes(): Promise<ReturnType<typeof lanes>> {
  const warm = lanes();
  await Promise.all(
    Object.values(warm).flatMap((sql) => Array.from({ length: sql.options.max }, () => sql`select 1`)),
  );
  return warm;
}

/** The rows of a result as plain objects (postgres.js results are arrays with extra fields). */
const rows = async (query: unknown): Promise<Record<string, unknown>[]> =>
  [...(await query) as Record<string, unknown>[]];

const stats = (sql: { stats(): Record<string, unknown> }) => sql.stats().affinity as AffinityStats;

describe.skipIf(unavailable !== undefined)("affinity with a streaming replica", () => {
  beforeAll(async () => {
    primary = await startPostgres({ name: "affinity-primary" });
    cleanup.defer(() => primary.destroy());
    await primary.psql(`
      create table items (id serial primary key, v text not null);
      create table notes (id serial primary key, v text not null);
      insert into notes (v) values ('seed');
      create function slow_report(ms int) returns int language sql as $$ select 1 from pg_sleep(ms / 1000.0) $$;
    `);
    replica = await startReplica(primary, { name: "affinity-replica" });
    cleanup.defer(() => replica.destroy());
    await until(async () => (await replica.psql("select count(*) from pg_proc where proname = 'slow_report'")) === "1", {
      message: "the replica to have the schema",
      timeoutMs: 20_000,
    });
  }, 60_000);

  afterAll(() => cleanup.run());

  test("reads land on the replica; writes, transactions, reserve and nextval() on the primary", async () => {
    const reader = metricReader();
    cleanup.defer(() => reader.shutdown());
    const { meterProvider } = reader;
    const sql = cleanup.track(pilot(lanes(), {
      name: "affinity-test",
      interceptors: [affinity({ reads: "replica", slow: "analytics", readYourWritesMs: 0, meterProvider })],
    }));
    const where = "pg_is_in_recovery() as standby, inet_server_port() as port";

    expect(await rows(sql.unsafe(`select ${where}`))).toEqual([{ standby: true, port: replica.port }]);
    expect(await rows(sql`select ${sql.unsafe(where)}, v from notes`)).toEqual([
      { standby: true, port: replica.port, v: "seed" },
    ]);
    expect(await rows(sql`insert into items (v) values (${"a"}) returning ${sql.unsafe(where)}`)).toEqual([
      { standby: false, port: primary.port },
    ]);
    expect(await rows(sql.begin((tx) => tx`select pg_is_in_recovery() as standby`))).toEqual([{ standby: false }]);
    const reserved = await sql.reserve();
    expect(await rows(reserved`select pg_is_in_recovery() as standby`)).toEqual([{ standby: false }]);
    reserved.release();
    expect(await rows(sql`select nextval('items_id_seq') > 0 as ok, pg_is_in_recovery() as standby`)).toEqual([
      { ok: true, standby: false },
    ]);

    // Explicit choices win; a hint naming no lane is ignored.
    expect(await rows(sql.lane("primary")`select pg_is_in_recovery() as standby`)).toEqual([{ standby: false }]);
    expect(await rows(sql.unsafe("/* pgpilot:lane=analytics */ select current_setting('application_name') as app")))
      .toEqual([{ app: "lane-analytics" }]);
    expect(await rows(sql.unsafe("/* pgpilot:lane=nope */ select pg_is_in_recovery() as standby"))).toEqual([
      { standby: true },
    ]);

    const s = stats(sql);
    expect(s.byLane).toEqual({
      primary: { write: 4, override: 1 },
      replica: { read: 3 },
      analytics: { override: 1 },
    });
    expect([s.routed, s.hitRate, s.fallbacks]).toEqual([9, 1, 0]);
    expect(s.readOffload).toBeCloseTo(4 / 5, 5); // 5 read-only root queries, 4 off the primary

    const routed = (await reader.values()).get("pgpilot.affinity.routed") ?? [];
    expect(routed.map((p) => [p.attributes["pgpilot.lane"], p.attributes["pgpilot.affinity.reason"], p.value]).sort())
      .toEqual([
        ["analytics", "override", 1],
        ["primary", "override", 1],
        ["primary", "write", 4],
        ["replica", "read", 3],
      ]);
    expect(routed.every((p) => p.attributes["db.client.connection.pool.name"] === "affinity-test")).toBe(true);
  });

  test("a read of a table written within the window reads its own write (replica replay paused)", async () => {
    const sql = cleanup.track(pilot(lanes(), { interceptors: [affinity({ reads: "replica", readYourWritesMs: 60_000 })] }));
    const v = `w-${Math.random()}`;
    await replica.psql("select pg_wal_replay_pause()");
    try {
      await sql`insert into items (v) values (${v})`;
      expect(await rows(sql`select count(*)::int as n, pg_is_in_recovery() as standby from items where v = ${v}`))
        .toEqual([{ n: 1, standby: false }]);
      // The replica alone would not have it: the rule is what made the read right.
      expect(await rows(sql.lane("replica")`select count(*)::int as n from items where v = ${v}`)).toEqual([{ n: 0 }]);
      // Other tables still read from the replica.
      expect(await rows(sql`select pg_is_in_recovery() as standby from notes limit 1`)).toEqual([{ standby: true }]);

      // A transaction's writes count when it commits.
      await sql.begin(async (tx) => {
        await tx`insert into notes (v) values (${v})`;
      });
      expect(await rows(sql`select count(*)::int as n, pg_is_in_recovery() as standby from notes where v = ${v}`))
        .toEqual([{ n: 1, standby: false }]);
      const s = stats(sql);
      expect(s.byLane.primary?.["read-your-writes"]).toBe(2);
      expect(s.readYourWrites).toEqual({ windowMs: 60_000, tablesInWindow: 2, everyTableInWindow: false });
    } finally {
      await replica.psql("select pg_wal_replay_resume()");
    }
  });

  test("after the window has passed, reads of the written table go back to the replica", async () => {
    const sql = cleanup.track(pilot(lanes(), { interceptors: [affinity({ reads: "replica", readYourWritesMs: 100 })] }));
    await sql`insert into items (v) values (${"later"})`;
    expect(await rows(sql`select pg_is_in_recovery() as standby from items limit 1`)).toEqual([{ standby: false }]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await rows(sql`select pg_is_in_recovery() as standby from items limit 1`)).toEqual([{ standby: true }]);
  });

  test("replica stopped: reads fall back to the primary, only in-flight reads fail, the replica returns", async () => {
    const guard = laneGuard();
    const sql = cleanup.track(pilot(lanes(), {
      interceptors: [affinity({ reads: "replica", readYourWritesMs: 0 }), guard],
    }));
    const workers = 4;
    const failures: { error: unknown; op: Operation }[] = [];
    const served: { standby: boolean; afterRestart: boolean }[] = [];
    let running = true;
    let restarted = false;

    const loops = Array.from({ length: workers }, async () => {
      while (running) {
        const afterRestart = restarted;
        try {
          const [row] = await sql`select pg_is_in_recovery() as standby`;
          served.push({ standby: row!.standby, afterRestart });
        } catch (error) {
          failures.push({ error, op: guard.lastFailed.get(error as object)! });
        }
      }
    });

    try {
      await until(() => served.filter((r) => r.standby).length >= 20, { message: "reads on the replica", timeoutMs: 20_000 });
      await replica.stop("immediate");
      await until(() => stats(sql).fallbacks >= 20, { message: "reads served by the primary", timeoutMs: 20_000 });
      expect(sql.health().status).toBe("degraded");
      await replica.start();
      restarted = true;
      await until(() => served.some((r) => r.afterRestart && r.standby), { message: "reads back on the replica", timeoutMs: 20_000 });
    } finally {
      // The workers stop whatever happened above: a failed wait must not leave them looping.
      running = false;
      await Promise.all(loops);
      if (!restarted) await replica.start().catch(() => {});
    }

    // Only reads already sent to the replica when it went down failed: at most one per worker,
    // each a connection failure of an operation routed there before the guard saw it down.
    expect(failures.length).toBeLessThanOrEqual(workers);
    for (const { error, op } of failures) {
      expect(classify(error)).toBe("connection");
      expect(op.lane).toBe("replica");
      expect(op.startedAt).toBeLessThanOrEqual(guard.downAt!);
    }
    expect(served.some((r) => !r.standby)).toBe(true); // the primary served during the outage
    expect(sql.health().status).toBe("healthy");
    const s = stats(sql);
    expect(s.byLane.primary?.fallback).toBe(s.fallbacks);
    expect(s.hitRate).toBeLessThan(1);
  }, 60_000);

  test("a pattern made slow (pg_sleep in a function) moves to the analytics lane and stays; fast ones stay", async () => {
    const changes: PatternChange[] = [];
    const routing = affinity({ reads: "replica", slow: "analytics", slowMs: 150, minSamples: 4, readYourWritesMs: 0 });
    routing.onPatternChange((change) => changes.push(change));
    const sql = cleanup.track(pilot(await warmLanes(), { interceptors: [routing] }));
    const report = async () =>
      (await sql`select slow_report(${250}) as x, current_setting('application_name') as app`)[0]!.app as string;
    const fast = async (i: number) =>
      (await sql`select ${i}::int as i, current_setting('application_name') as app`)[0]!.app as string;

    // One window of 4 (routed at once, so all to the replica), interleaved with fast queries.
    const [first, fastFirst] = await Promise.all([
      Promise.all(Array.from({ length: 4 }, report)),
      Promise.all(Array.from({ length: 8 }, (_, i) => fast(i))),
    ]);
    expect(first).toEqual(Array(4).fill("lane-replica"));
    expect(fastFirst).toEqual(Array(8).fill("lane-replica"));
    expect(changes.map((c) => [c.from, c.to, c.windowSamples, c.command])).toEqual([["fast", "slow", 4, "SELECT"]]);
    expect(changes[0]!.p95Ms).toBeGreaterThanOrEqual(250);

    // Two more windows: it stays on the analytics lane; fast queries stay on the replica. Eight at
    // once on a lane of two connections: postgres.js pipelines them, and each is measured from
    // when the one ahead of it on its connection settled, so all 8 count.
    const [later, fastLater] = await Promise.all([
      Promise.all(Array.from({ length: 8 }, report)),
      Promise.all(Array.from({ length: 24 }, (_, i) => fast(i))),
    ]);
    expect(later).toEqual(Array(8).fill("lane-analytics"));
    expect(fastLater).toEqual(Array(24).fill("lane-replica"));
    expect(changes.length).toBe(1);

    const s = stats(sql);
    expect(s.byLane.analytics).toEqual({ "slow-pattern": 8 });
    expect(s.patterns.slowCount).toBe(1);
    expect(s.patterns.slow.map((p) => [p.fingerprint, p.state, p.samples, p.windows])).toEqual([
      [changes[0]!.fingerprint, "slow", 12, 3],
    ]);
    expect(s.patterns.slow[0]!.lastWindowP95Ms!).toBeGreaterThanOrEqual(250);
    expect(s.patterns.recentFast.length).toBeGreaterThan(0);
    expect(s.patterns.recentFast.every((p) => p.state === "fast" && p.changes === 0)).toBe(true);
  }, 30_000);

  test("a fast query pipelined behind slow ones on a busy connection is not learned as slow", async () => {
    const changes: PatternChange[] = [];
    const routing = affinity({ reads: "single", slow: "analytics", slowMs: 150, minSamples: 4, readYourWritesMs: 0 });
    routing.onPatternChange((change) => changes.push(change));
    // One connection: postgres.js pipelines every query onto it, each waiting for those ahead.
    const single = postgres(primary.url, { max: 1, onnotice: () => {} });
    await single`select 1`;
    const sql = cleanup.track(pilot({ primary: lanes().primary, single, analytics: lanes().analytics }, { interceptors: [routing] }));
    await Promise.all(Array.from({ length: 4 }, (_, i) => [sql`select slow_report(${250})`, sql`select ${i}::int as i`]).flat());
    // Queued behind up to 1 s of pg_sleep, the fast pattern took up to 1 s from dispatch; its own
    // time (from when the query ahead of it settled) is what was learned.
    expect(changes.map((c) => c.to)).toEqual(["slow"]);
    const fast = stats(sql).patterns.recentFast.find((p) => p.fingerprint !== changes[0]!.fingerprint)!;
    expect([fast.state, fast.samples]).toEqual(["fast", 4]);
    expect(fast.lastWindowP95Ms!).toBeLessThan(150);
  }, 30_000);
});

/**
 * A tiny availability guard for the outage test: a lane is unavailable from its first
 * connection failure until `select 1` on it (tried every 100 ms, outside the chain) answers.
 * It records when it saw the lane go down and which operation each failure belonged to.
 */
function laneGuard(): Interceptor & { downAt: number | undefined; lastFailed: WeakMap<object, Operation> } {
  const down = new Set<string>();
  let context: PilotContext | undefined;
  const guard = {
    name: "lane-guard",
    downAt: undefined as number | undefined,
    lastFailed: new WeakMap<object, Operation>(),
    attach(attached: PilotContext) {
      context = attached;
    },
    provides: { laneAvailable: (lane: string) => !down.has(lane) },
    async intercept(op: Operation, next: () => Promise<unknown>) {
      try {
        return await next();
      } catch (error) {
        if (typeof error === "object" && error !== null) guard.lastFailed.set(error, op);
        if (classify(error) === "connection" && !down.has(op.lane)) {
          down.add(op.lane);
          guard.downAt = performance.now();
          void probeUntilUp(op.lane);
        }
        throw error;
      }
    },
  };
  async function probeUntilUp(lane: string): Promise<void> {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      try {
        await context!.lanes.get(lane)!.probe();
        down.delete(lane);
        return;
      } catch {
        // still down
      }
    }
  }
  return guard;
}
