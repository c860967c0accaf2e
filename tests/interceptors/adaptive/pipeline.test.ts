/**
 * adaptive() pipelining onto reserved connections, against the real PostgreSQL: queries spread
 * over the reserved connections (pg_backend_pid), results stay with their callers while new
 * statements are described, a killed reserved connection fails only its own queries and the
 * lane heals, transactions and session statements keep using the pool, close() returns.
 */
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { adaptive } from "../../../lib/interceptors/adaptive/index.ts";
import { retry } from "../../../lib/interceptors/retry/index.ts";
import { pilot } from "../../../lib/core/pilot.ts";
import { classify } from "../../../lib/shared/classify.ts";
import { testUrl } from "../../support/db.ts";
import { cleanupAfterEach, until } from "../../support/kit.ts";

const url = testUrl();
const cleanup = cleanupAfterEach();

/** A raw connection for watching and killing backends, outside every pool under test. */
const observer = postgres(url, { max: 1, onnotice: () => {} });
afterAll(() => observer.end({ timeout: 1 }));

let appCounter = 0;

function make(options: Parameters<typeof adaptive>[0], max: number) {
  const application = `pipeline_${process.pid}_${++appCounter}_${Math.random().toString(36).slice(2, 6)}`;
  const sql = pilot(
    postgres(url, { max, onnotice: () => {}, connection: { application_name: application } }),
    // Pipelining is opt-in; these tests are about it, so it is on unless a test says otherwise.
    { interceptors: [adaptive({ prewarm: false, pipelineDepth: 16, ...options })] },
  );
  cleanup.track(sql);
  return { sql, application };
}

interface PipelineSection {
  depth: number;
  connections: number;
  reserving: number;
  inFlight: number;
  pids: number[];
  reserved: number;
  released: number;
  lost: number;
}

function pipelineOf(sql: { stats(): Record<string, unknown> }): PipelineSection {
  return (sql.stats().adaptive as { lanes: { primary: { pipeline: PipelineSection } } }).lanes.primary.pipeline;
}

/** Wait until a backend is running a statement (a fact read from the server, not a sleep). */
async function untilActive(pid: number): Promise<void> {
  await until(async () => {
    const [row] = await observer`select state from pg_stat_activity where pid = ${pid}`;
    return row?.state === "active";
  }, { message: `backend ${pid} to run a statement` });
}

/** Kill a backend once it is running a statement. */
async function terminateWhileActive(pid: number): Promise<void> {
  await untilActive(pid);
  await observer`select pg_terminate_backend(${pid})`;
}

async function backends(application: string): Promise<number[]> {
  const rows = await observer`select pid from pg_stat_activity where application_name = ${application}`;
  return rows.map((row) => row.pid as number);
}

/** Keep `n` connections' worth of demand until the pipeline holds `n` reserved connections. */
async function reserveConnections(sql: any, n: number): Promise<void> {
  await until(async () => {
    await Promise.all(Array.from({ length: n * pipelineOf(sql).depth }, () => sql`select pg_sleep(0.005)`));
    return pipelineOf(sql).connections >= n;
  }, { message: `${n} reserved connections` });
}

describe("pipelining onto reserved connections", () => {
  test("queries spread over the reserved connections, several per connection", async () => {
    const { sql, application } = make({ pipelineDepth: 4 }, 10);
    await reserveConnections(sql, 2);
    const reserved = pipelineOf(sql).pids;
    expect(reserved.length).toBeGreaterThanOrEqual(2);
    // As many as the reserved connections carry at their depth: no reason to reserve more.
    const burst = reserved.length * 4;
    const rows = await Promise.all(Array.from({ length: burst }, (_, i) => sql`select ${i}::int as i, pg_backend_pid() as pid`));
    const pids = rows.map((r) => r[0].pid as number);
    // Every query ran on a reserved connection, each of them carried queries, some several.
    for (const pid of pids) expect(reserved).toContain(pid);
    expect(new Set(pids).size).toBe(reserved.length);
    expect(new Set(pids).size).toBeLessThan(burst);
    expect(rows.map((r) => r[0].i)).toEqual(Array.from({ length: burst }, (_, i) => i));
    // The reserved connections are connections of this pool (application_name), not extra ones.
    const open = await backends(application);
    for (const pid of reserved) expect(open).toContain(pid);
    expect(pipelineOf(sql).inFlight).toBe(0);
  }, 30_000);

  test("new statements are described before anything is pipelined behind them: every caller gets its own row", async () => {
    const { sql } = make({ pipelineDepth: 16 }, 6);
    await reserveConnections(sql, 2);
    // 300 concurrent callers, 5 statements never prepared on these connections, mixed types.
    const calls = Array.from({ length: 300 }, (_, i) => {
      switch (i % 5) {
        case 0:
          return sql`select ${i}::int as v, ${"a" + i}::text as t`.then((r) => [r[0].v, r[0].t]);
        case 1:
          return sql`select ${"b" + i}::text as t, ${i}::bigint as v`.then((r) => [Number(r[0].v), r[0].t]);
        case 2:
          return sql`select ${i}::int + 0 as v, 'c' || ${i}::text as t`.then((r) => [r[0].v, r[0].t]);
        case 3:
          return sql`select v, t from (values (${i}::int, ${"d" + i}::text)) as x(v, t)`.then((r) => [r[0].v, r[0].t]);
        default:
          return sql`select ${i}::int as v, ${"e" + i}::varchar as t`.then((r) => [r[0].v, r[0].t]);
      }
    });
    const results = await Promise.all(calls);
    expect(results).toEqual(Array.from({ length: 300 }, (_, i) => [i, "abcde"[i % 5] + i]));
  }, 30_000);

  test("a reserved connection killed mid-flight: its queries fail with connection errors, the others succeed, the lane heals", async () => {
    const { sql } = make({ pipelineDepth: 4 }, 10);
    await reserveConnections(sql, 2);
    const victim = pipelineOf(sql).pids[0]!;
    // Enough slow queries that every reserved connection carries some.
    const calls = Array.from({ length: 16 }, () => sql`select pg_backend_pid() as pid, pg_sleep(0.5)`);
    const settled = Promise.allSettled(calls);
    await terminateWhileActive(victim);
    const results = await settled;
    const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    const succeeded = results.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<any>[];
    expect(failed.length).toBeGreaterThan(0);
    for (const failure of failed) expect(classify(failure.reason)).toBe("connection");
    for (const success of succeeded) expect(success.value[0].pid).not.toBe(victim);
    expect(pipelineOf(sql).lost).toBeGreaterThanOrEqual(1);
    expect(pipelineOf(sql).pids).not.toContain(victim);
    // Later queries succeed, and the lane reserves connections again.
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => sql`select ${i}::int as i, pg_backend_pid() as pid`));
    expect(after.map((r) => r[0].i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const row of after) expect(row[0].pid).not.toBe(victim);
    await reserveConnections(sql, 2);
    expect(pipelineOf(sql).pids).not.toContain(victim);
  }, 30_000);

  test("with retry() outside, reads on a killed reserved connection are retried on another and succeed", async () => {
    const application = `pipeline_retry_${process.pid}_${++appCounter}`;
    const sql = pilot(
      postgres(url, { max: 10, onnotice: () => {}, connection: { application_name: application } }),
      { interceptors: [retry({ maxAttempts: 3 }), adaptive({ prewarm: false, pipelineDepth: 4 })] },
    );
    cleanup.track(sql);
    await reserveConnections(sql, 2);
    const victim = pipelineOf(sql).pids[0]!;
    const calls = Array.from({ length: 16 }, (_, i) => sql`select ${i}::int as i, pg_backend_pid() as pid, pg_sleep(0.3)`);
    const settled = Promise.allSettled(calls);
    await terminateWhileActive(victim);
    const results = await settled;
    expect(results.map((r) => r.status)).toEqual(calls.map(() => "fulfilled"));
    const rows = results.map((r) => (r as PromiseFulfilledResult<any>).value[0]);
    expect(rows.map((row) => row.i)).toEqual(calls.map((_, i) => i));
    for (const row of rows) expect(row.pid).not.toBe(victim);
    expect(pipelineOf(sql).lost).toBeGreaterThanOrEqual(1);
  }, 30_000);

  test("a reserved connection killed while idle is dropped before it gets a query", async () => {
    const { sql } = make({ pipelineDepth: 4 }, 10);
    await reserveConnections(sql, 2);
    const victim = pipelineOf(sql).pids[0]!;
    await observer`select pg_terminate_backend(${victim})`;
    // postgres.js sees the socket close; from then on the connection is not the reserved one.
    await until(() => !pipelineOf(sql).pids.includes(victim), { message: "the killed connection to be dropped" });
    const rows = await Promise.all(Array.from({ length: 30 }, (_, i) => sql`select ${i}::int as i, pg_backend_pid() as pid`));
    expect(rows.map((r) => r[0].i)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    for (const row of rows) expect(row[0].pid).not.toBe(victim);
    expect(pipelineOf(sql).lost).toBe(1);
  }, 30_000);

  test("transactions, sql.reserve() and cursors use pool connections while connections are reserved", async () => {
    // Pool 4: at most 3 reserved, so the pool always keeps one connection for these.
    const { sql } = make({ pipelineDepth: 2 }, 4);
    await reserveConnections(sql, 3);
    const reservedPids = pipelineOf(sql).pids;
    const load = Array.from({ length: 30 }, () => sql`select pg_sleep(0.01)`);
    const [a, b] = await Promise.all([
      sql.begin(async (tx) => {
        await tx`select 1`;
        return (await tx`select pg_backend_pid() as pid`)[0]!.pid as number;
      }),
      sql.begin(async (tx) => (await tx`select pg_backend_pid() as pid, 2 as v`)[0]!.v as number),
    ]);
    expect(b).toBe(2);
    expect(reservedPids).not.toContain(a);
    const reservation = await sql.reserve();
    expect([...await reservation`select 3 as v`]).toEqual([{ v: 3 }]);
    reservation.release();
    const batches: number[] = [];
    await sql`select generate_series(1, 5) as n`.cursor(2, (rows) => void batches.push(rows.length));
    expect(batches).toEqual([2, 2, 1]);
    await Promise.all(load);
  }, 30_000);

  test("a bare BEGIN is not pipelined: postgres.js still refuses it outside sql.begin", async () => {
    const { sql } = make({ pipelineDepth: 4 }, 10);
    await reserveConnections(sql, 1);
    const error = await sql`begin`.catch((e) => e);
    expect(error.code).toBe("UNSAFE_TRANSACTION");
    expect([...await sql`select 1 as v`]).toEqual([{ v: 1 }]);
  }, 30_000);

  test("close() returns with connections reserved and queries in flight, and gives them back", async () => {
    const { sql, application } = make({ pipelineDepth: 4 }, 10);
    await reserveConnections(sql, 2);
    const running = Array.from({ length: 8 }, () => sql`select pg_sleep(0.05)`.catch((e) => e));
    await sql.close({ timeout: 1 });
    await Promise.all(running);
    await until(async () => (await backends(application)).length === 0, { message: "every backend to be gone" });
  }, 30_000);

  test("cancelling a query written behind another: every caller settles with its own rows", async () => {
    // max 2: one reservable connection, so the three queries share it.
    const { sql } = make({}, 2);
    await reserveConnections(sql, 1);
    const [pid] = pipelineOf(sql).pids;
    const first = sql`select 'first' as who, pg_sleep(0.3)`.execute();
    await untilActive(pid!);
    const second = sql`select 'second' as who`.execute();
    const third = sql`select 'third' as who`.execute();
    await until(() => pipelineOf(sql).inFlight === 3, { message: "3 queries in flight" });
    second.cancel();
    const [a, b, c] = await Promise.allSettled([first, second, third]);
    expect(a.status === "fulfilled" && a.value[0]!.who).toBe("first");
    // Not yet running when cancelled: it runs to completion (a deadline would have answered its
    // caller already); what matters is that it settles with its own row, not the next one's.
    expect(b.status === "fulfilled" ? b.value[0]!.who : (b.reason as { code?: string }).code).toBe("second");
    expect(c.status === "fulfilled" && c.value[0]!.who).toBe("third");
    await until(() => pipelineOf(sql).inFlight === 0, { message: "nothing in flight" });
  }, 30_000);

  test("end() without a timeout waits for pipelined queries, then ends every connection", async () => {
    const { sql, application } = make({}, 4);
    await reserveConnections(sql, 1);
    const running = sql`select 'done' as state, pg_sleep(0.2)`.execute();
    await until(() => pipelineOf(sql).inFlight === 1, { message: "1 query in flight" });
    await sql.end();
    expect((await running)[0]!.state).toBe("done");
    await until(async () => (await backends(application)).length === 0, { message: "every backend to be gone" });
  }, 30_000);

  test("queries waiting behind a statement being described go to the pool when their connection is lost", async () => {
    // max 2: one reservable connection; the first statement is new there (described first), so
    // the ones after it wait unwritten until it completes.
    const { sql } = make({}, 2);
    await reserveConnections(sql, 1);
    const [victim] = pipelineOf(sql).pids;
    const first = sql`select ${1}::int as x, pg_sleep(0.5)`.execute();
    const waiting = [sql`select ${2}::int as y`.execute(), sql`select ${3}::int as y`.execute()];
    await terminateWhileActive(victim!);
    expect(await first.then(() => "resolved", (error: unknown) => classify(error))).toBe("connection");
    // Never written to the dead connection, they go through the pool instead: each settles with
    // its own row, or with a connection error while the pool is replacing that connection.
    const outcomes = await Promise.all(waiting.map((query) => query.then((rows) => rows[0]!.y, (error: unknown) => classify(error))));
    expect(outcomes.map((outcome, i) => outcome === i + 2 || outcome === "connection")).toEqual([true, true]);
    expect(outcomes).toContain(2);
    expect((await sql`select ${4}::int as y`)[0]!.y).toBe(4);
  }, 30_000);

  test("pipelineDepth: 0 reserves nothing", async () => {
    const { sql } = make({ pipelineDepth: 0 }, 10);
    await Promise.all(Array.from({ length: 30 }, () => sql`select 1`));
    expect(sql.stats().adaptive.lanes.primary!.pipeline).toBeUndefined();
  });
});
