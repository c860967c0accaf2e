/**
 * The breaker, deadline and retry against real outages: a PostgreSQL of our own stopped
 * (immediate) and restarted under 25 writers, and the TCP fault proxy (blackhole, refused
 * connections, resets) in front of the shared server.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { classify } from "../../lib/shared/classify.ts";
import { CircuitOpenError, DeadlineExceededError } from "../../lib/shared/errors.ts";
import { breaker, type CircuitTransition } from "../../lib/interceptors/breaker/index.ts";
import { deadline } from "../../lib/interceptors/deadline/index.ts";
import { retry } from "../../lib/interceptors/retry/index.ts";
import { pilot } from "../../lib/core/pilot.ts";
import { testUrl } from "../support/db.ts";
import { type FaultProxy, startFaultProxy } from "../support/fault-proxy.ts";
import { settled, until } from "../support/kit.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";

const quiet = { onnotice: () => {} };
const suffix = Math.random().toString(36).slice(2, 8);
const admin = postgres(testUrl(), { max: 2, ...quiet });
let proxy: FaultProxy;

beforeAll(async () => {
  const target = new URL(testUrl());
  proxy = await startFaultProxy({ target: { host: target.hostname, port: Number(target.port) } });
});

afterAll(async () => {
  await admin.end({ timeout: 1 });
  await proxy.close();
});

// The writers use plain inserts: postgres.js 3.4.9 crashes the process (an uncaught TypeError
// from a setImmediate in nextWrite) when a transaction's connection dies mid-transaction and it
// writes the ROLLBACK to the closed socket (porsager/postgres#1066, #1154, #1208).
describe("server stopped and restarted under 25 concurrent writers", () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres({ name: "outage" });
  }, 60_000);
  afterAll(async () => {
    await server.destroy();
  });

  test("every call settles; resolved writes are kept, CIRCUIT_OPEN ones never happened; the breaker opens, probes, closes", async () => {
    const guard = breaker({ recoveryMs: 200, maxRecoveryMs: 800, halfOpenRequests: 2, probeTimeoutMs: 1_000 });
    const transitions: CircuitTransition[] = [];
    guard.onStateChange((transition) => transitions.push(transition));
    const sql = pilot(postgres(server.url, { max: 10, connect_timeout: 2, ...quiet }), {
      interceptors: [deadline({ timeoutMs: 3_000 }), retry({ baseDelayMs: 5 }), guard],
    });
    await sql`create table outage_writes (id text primary key, writer int not null)`;

    const resolved: string[] = [];
    const circuitOpen: string[] = [];
    const failures: unknown[] = [];
    // Writes that started once the server was back and the circuit had closed again.
    let closedAgain = false;
    const afterClose: { id: string; ok: boolean; code?: string }[] = [];
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const id = `${w}-${i}`;
        const watched = closedAgain;
        try {
          await sql`insert into outage_writes ${sql({ id, writer: w })}`;
          resolved.push(id);
          if (watched) afterClose.push({ id, ok: true });
          await Bun.sleep(2);
        } catch (error) {
          if (watched && !(error instanceof CircuitOpenError)) afterClose.push({ id, ok: false, code: (error as { code?: string }).code });
          if (error instanceof CircuitOpenError) circuitOpen.push(id);
          else failures.push(error);
          // A caller that was turned away backs off a little (and lets timers run).
          await Bun.sleep(10);
        }
      }
    };
    const writers = Array.from({ length: 25 }, (_, w) => writer(w));
    try {
      await until(() => resolved.length >= 200, { message: "writes before the outage", timeoutMs: 30_000 });
      await server.stop("immediate");
      await until(() => transitions.some((t) => t.to === "open"), { message: "the circuit to open", timeoutMs: 30_000 });
      // Stay down until a probe has failed against the dead server and re-opened the circuit.
      await until(() => transitions.some((t) => t.from === "half-open" && t.to === "open"), { message: "a failed probe", timeoutMs: 30_000 });
      const rejectedWhileDown = circuitOpen.length;
      const beforeRestart = transitions.length;
      await server.start();
      // Probes run on fresh connections: the circuit closes once the server is back, whatever
      // state the pool's connections were left in.
      await until(() => transitions.slice(beforeRestart).some((t) => t.to === "closed"), { message: "the circuit to close after the restart", timeoutMs: 30_000 });
      closedAgain = true;
      const atClose = resolved.length;
      await until(() => resolved.length >= atClose + 200, { message: "writes after recovery", timeoutMs: 30_000 });
      expect(rejectedWhileDown).toBeGreaterThan(0);
      // A write admitted after the circuit closed is acknowledged. (Not necessarily the first:
      // pool connections postgres.js 3.4.9 left unable to write fail what they are given with
      // CONNECT_TIMEOUT — porsager/postgres#1208 — and idle ones that died in the outage with
      // EPIPE; only a new pool cures those.)
      await until(() => afterClose.some((write) => write.ok), { message: "a write acknowledged after the circuit closed", timeoutMs: 30_000 });
    } finally {
      stop = true;
      // Every call settles: the writers' loops end (the deadline bounds each call).
      await Promise.all(writers);
    }

    // Connections the pool opened while the server was coming back can still fail after the
    // first close and open the circuit once more; the active probe closes it again.
    await until(() => guard.state("primary") === "closed", { message: "the circuit to be closed", timeoutMs: 30_000 });
    const check = postgres(server.url, { max: 1, ...quiet });
    const stored = new Set((await check`select id from outage_writes`).map((row) => row.id as string));
    await check.end({ timeout: 1 });
    expect(resolved.filter((id) => !stored.has(id))).toEqual([]);
    expect(circuitOpen.filter((id) => stored.has(id))).toEqual([]);
    // The other failures are typed database failures, none of them the caller's fault.
    for (const error of failures) {
      expect(typeof (error as { code?: unknown }).code).toBe("string");
      expect(classify(error)).not.toBe("client");
    }
    const path = transitions.map((t) => `${t.from}>${t.to}`);
    expect(path[0]).toBe("closed>open");
    expect(path).toContain("open>half-open");
    expect(path).toContain("half-open>open");
    expect(path.at(-1)).toBe("half-open>closed");
    expect(transitions[0]!.category).toBe("connection");
    const stats = guard.stats().lanes.primary!;
    expect(stats.activeProbes.sent).toBeGreaterThan(0);
    expect(stats.rejections).toBe(circuitOpen.length);
    expect(guard.health().status).toBe("healthy");
    // Same sql, same pool: nothing was recreated. (A pool connection postgres.js left unable to
    // write fails what it is given with CONNECT_TIMEOUT — porsager/postgres#1208 —, so the read
    // may take more than one try.)
    await until(async () => (await settled(sql.with({ timeoutMs: 10_000 })`select 1 as one`)) === undefined, { message: "a read through the same pool", timeoutMs: 30_000 });
    await sql.close({ timeout: 1 });
  }, 60_000);
});

describe("fault proxy", () => {
  test("blackhole: deadline errors open the breaker; then rejections happen without I/O", async () => {
    const guard = breaker({ recoveryMs: 60_000, activeProbing: false });
    const sql = pilot(postgres(proxy.url(testUrl()), { max: 4, ...quiet }), {
      interceptors: [deadline({ timeoutMs: 150 }), retry(), guard],
    });
    try {
      // Connect the pool first (with room to spare: connecting is not what is tested).
      await Promise.all(Array.from({ length: 4 }, () => sql.with({ timeoutMs: 10_000 })`select 1`));
      proxy.blackhole(true);
      const errors = await Promise.all(Array.from({ length: 12 }, () => settled(sql`select 1`)));
      expect(errors.every((error) => error instanceof DeadlineExceededError)).toBe(true);
      expect(guard.state("primary")).toBe("open");
      expect(guard.stats().lanes.primary).toMatchObject({ category: "timeout" });
      // Let traffic through again: any call the breaker admitted would now reach the server.
      proxy.blackhole(false);
      const bytes = [proxy.bytesFromClient, proxy.bytesToClient];
      const rejections = await Promise.all(Array.from({ length: 100 }, () => settled(sql`select 1`)));
      expect(rejections.every((error) => error instanceof CircuitOpenError && error.category === "timeout")).toBe(true);
      expect([proxy.bytesFromClient, proxy.bytesToClient]).toEqual(bytes);
      expect(guard.stats().lanes.primary!.rejections).toBe(100);
    } finally {
      proxy.blackhole(false);
      proxy.resetAll();
      await sql.close({ timeout: 1 });
    }
  });

  test("half-open under 50 concurrent callers: at most halfOpenRequests reach the server", async () => {
    const table = `halfopen_${suffix}`;
    await admin`create table ${admin(table)} (n int not null)`;
    const guard = breaker({ recoveryMs: 100, activeProbing: false, halfOpenRequests: 2 });
    const sql = pilot(postgres(proxy.url(testUrl()), { max: 10, ...quiet }), { interceptors: [guard] });
    try {
      proxy.refuse(true);
      for (let i = 0; i < 5; i++) expect((await settled(sql`select 1`))?.code).toBe("ECONNREFUSED");
      expect(guard.state("primary")).toBe("open");
      proxy.refuse(false);
      await until(() => guard.laneAvailable("primary"), { message: "the recovery time to pass", timeoutMs: 20_000 });
      const accepted = proxy.connectionsAccepted;
      const outcomes = await Promise.all(
        Array.from({ length: 50 }, (_, n) => settled(sql`insert into ${sql(table)} (n) select ${n} from pg_sleep(0.05)`)),
      );
      const admitted = outcomes.filter((outcome) => outcome === undefined).length;
      expect(admitted).toBeGreaterThanOrEqual(1);
      expect(admitted).toBeLessThanOrEqual(2);
      expect(outcomes.filter((outcome) => outcome instanceof CircuitOpenError)).toHaveLength(50 - admitted);
      const [{ rows }] = await admin`select count(*)::int as rows from ${admin(table)}`;
      expect(rows).toBe(admitted);
      expect(proxy.connectionsAccepted - accepted).toBeLessThanOrEqual(2);
      expect(guard.state("primary")).toBe("closed");
    } finally {
      proxy.refuse(false);
      await sql.close({ timeout: 1 });
      await admin`drop table if exists ${admin(table)}`;
    }
  });

  test("active probing closes the circuit with no user traffic", async () => {
    const guard = breaker({ recoveryMs: 100, halfOpenRequests: 2 });
    const sql = pilot(postgres(proxy.url(testUrl()), { max: 4, ...quiet }), { interceptors: [guard] });
    try {
      proxy.refuse(true);
      for (let i = 0; i < 5; i++) await settled(sql`select 1`);
      expect(guard.state("primary")).toBe("open");
      proxy.refuse(false);
      await until(() => guard.state("primary") === "closed", { message: "the probes to close it", timeoutMs: 20_000 });
      expect(guard.stats().lanes.primary!.activeProbes).toMatchObject({ answered: 2 });
      expect((await sql`select 7 as seven`)[0]!.seven).toBe(7);
    } finally {
      proxy.refuse(false);
      await sql.close({ timeout: 1 });
    }
  });

  test("sql.close() with a timeout completes after connection resets", async () => {
    const sql = pilot(postgres(proxy.url(testUrl()), { max: 2, ...quiet }), { interceptors: [breaker()] });
    await sql`select 1`;
    const sent = proxy.bytesFromClient;
    const running = settled(sql`select pg_sleep(5)`);
    await until(() => proxy.bytesFromClient > sent, { message: "the query to reach the proxy", timeoutMs: 20_000 });
    proxy.resetAll();
    expect(classify(await running)).toBe("connection");
    const outcome = await Promise.race([sql.close({ timeout: 1 }).then(() => "closed"), Bun.sleep(10_000).then(() => "hung")]);
    expect(outcome).toBe("closed");
  });
});

describe("client errors against the real server", () => {
  test("unique, check and syntax errors at any rate never open the breaker, even with thresholds of 1", async () => {
    const table = `client_errors_${suffix}`;
    await admin`create table ${admin(table)} (id int primary key, n int check (n > 0))`;
    await admin`insert into ${admin(table)} values (1, 1)`;
    const guard = breaker({ thresholds: { connection: 1, timeout: 1, transaction: 1, resource: 1 }, minimumVolume: 1, failureRate: 0.01 });
    const sql = pilot(postgres(testUrl(), { max: 8, ...quiet }), { interceptors: [guard] });
    try {
      const calls = Array.from({ length: 300 }, (_, i) =>
        settled(
          i % 3 === 0
            ? sql`insert into ${sql(table)} values (1, 1)`
            : i % 3 === 1
            ? sql`insert into ${sql(table)} values (${i + 10}, -1)`
            : sql.unsafe("selec 1"),
        )
      );
      const codes = new Set((await Promise.all(calls)).map((error) => error?.code));
      expect([...codes].sort()).toEqual(["23505", "23514", "42601"]);
      expect(guard.state("primary")).toBe("closed");
      expect(guard.stats().lanes.primary).toMatchObject({ transitions: 0, window: { calls: 300, failures: 0 } });
    } finally {
      await sql.close({ timeout: 1 });
      await admin`drop table if exists ${admin(table)}`;
    }
  });
});
