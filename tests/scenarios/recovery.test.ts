/**
 * Recovery and honest health against a real PostgreSQL (issue 14): breaker probes run on a fresh
 * connection of their own, so a stuck pool cannot keep a circuit open; a lane where every call
 * fails (wrong database, missing role) is "failed" and says why; breaker rejections count as
 * errors in monitor without touching latency.
 */
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { CircuitOpenError } from "../../lib/shared/errors.ts";
import { breaker } from "../../lib/interceptors/breaker/index.ts";
import { monitor } from "../../lib/interceptors/monitor/index.ts";
import { pilot } from "../../lib/core/pilot.ts";
import { testUrl } from "../support/db.ts";
import { until } from "../support/kit.ts";

const quiet = { onnotice: () => {} };
const suffix = Math.random().toString(36).slice(2, 8);
const admin = postgres(testUrl(), { max: 1, ...quiet });

afterAll(async () => {
  await admin.end({ timeout: 1 });
});

const settle = (promise: Promise<unknown>): Promise<any> => promise.then(() => undefined, (error) => error);

function urlWith(changes: { database?: string; user?: string }): string {
  const url = new URL(testUrl());
  if (changes.database !== undefined) url.pathname = `/${changes.database}`;
  if (changes.user !== undefined) url.username = changes.user;
  return url.toString();
}

describe("breaker probes on a fresh connection", () => {
  test("a circuit closes while every connection of the lane's pool is stuck", async () => {
    const tag = `stuck_${suffix}`;
    const raw = postgres(testUrl(), { max: 1, connection: { application_name: tag }, ...quiet });
    // The pool's only connection is busy: a probe through the pool would wait behind it.
    const stuck = settle(raw`select pg_sleep(60)`);
    await until(async () =>
      (await admin`select count(*)::int as n from pg_stat_activity where application_name = ${tag} and state = 'active'`)[0]!
        .n === 1, { message: "the sleep to run" });
    const guard = breaker({
      recoveryMs: 50,
      probeTimeoutMs: 30_000,
      initialState: { primary: { state: "open", category: "connection", until: Date.now(), opens: 1 } },
    });
    const sql = pilot(raw, { interceptors: [guard] });
    try {
      await until(() => guard.state("primary") === "closed", { message: "fresh probes to close the circuit", timeoutMs: 30_000 });
      expect(guard.stats().lanes.primary!.activeProbes).toMatchObject({ sent: 2, answered: 2 });
      // The probes used connections of their own: the pool's connection is still in its sleep.
      const [{ n }] = await admin`select count(*)::int as n from pg_stat_activity where application_name = ${tag} and state = 'active'`;
      expect(n).toBe(1);
    } finally {
      await admin`select pg_cancel_backend(pid) from pg_stat_activity where application_name = ${tag}`;
      expect((await stuck)?.code).toBe("57014");
      await sql.close({ timeout: 1 });
    }
  });
});

describe("a lane where every call fails", () => {
  test("wrong database: breaker opens with the server's error as cause, health says failed and why", async () => {
    const database = `nope_${suffix}`;
    const monitoring = monitor({ metricProducer: false });
    const guard = breaker({ recoveryMs: 60_000 });
    const sql = pilot(postgres(urlWith({ database }), { max: 2, ...quiet }), { interceptors: [monitoring, guard] });
    try {
      const errors = [];
      for (let i = 0; i < 8; i++) errors.push(await settle(sql`select 1`));
      const missing = `database "${database}" does not exist`;
      // The first calls reach the server and fail; the circuit opens after the connection threshold.
      expect(errors.slice(0, 5).map((error) => error?.code)).toEqual(Array(5).fill("3D000"));
      const rejection = errors.at(-1) as CircuitOpenError;
      expect(rejection).toBeInstanceOf(CircuitOpenError);
      expect(rejection.cause).toMatchObject({ code: "3D000", message: missing });
      expect(rejection.message).toContain(missing);
      const health = sql.health();
      expect(health.status).toBe("failed");
      expect(health.reasons.join("\n")).toContain(JSON.stringify(missing));
      // monitor: the rejections are errors of their own category, all 8 calls failed.
      const stats = monitoring.stats();
      expect(stats.errors).toMatchObject({ connection: 5, rejected: 3 });
      expect(stats.window).toMatchObject({ operations: 8, failures: 8, errorRate: 1 });
    } finally {
      await sql.close({ timeout: 1 });
    }
  });

  test("monitor alone: a missing role or a wrong database is failed within a few calls", async () => {
    for (const [changes, code, text] of [
      [{ database: `nope_${suffix}` }, "3D000", `database "nope_${suffix}" does not exist`],
      [{ user: `nobody_${suffix}` }, "28000", `role "nobody_${suffix}" does not exist`],
    ] as const) {
      const monitoring = monitor({ metricProducer: false });
      const sql = pilot(postgres(urlWith(changes), { max: 1, ...quiet }), { interceptors: [monitoring] });
      try {
        for (let i = 0; i < 4; i++) expect((await settle(sql`select 1`))?.code).toBe(code);
        expect(sql.health().status).toBe("healthy");
        expect((await settle(sql`select 1`))?.code).toBe(code);
        const health = sql.health();
        expect(health.status).toBe("failed");
        expect(health.reasons.join("\n")).toContain(`the last 5 operations all failed: ${JSON.stringify(text)} (${code})`);
      } finally {
        await sql.close({ timeout: 1 });
      }
    }
  });

  test("no permission on every call is failed too; statement errors and one success are not", async () => {
    const role = `limited_${suffix}`;
    const table = `secret_${suffix}`;
    await admin.unsafe(`create role ${role} login`);
    await admin.unsafe(`create table ${table} (n int)`);
    const monitoring = monitor({ metricProducer: false });
    const sql = pilot(postgres(urlWith({ user: role }), { max: 1, ...quiet }), { interceptors: [monitoring] });
    try {
      // Syntax errors and a success: nothing to say about the lane.
      for (let i = 0; i < 6; i++) expect((await settle(sql.unsafe("selec 1")))?.code).toBe("42601");
      expect(sql.health().status).toBe("healthy");
      for (let i = 0; i < 4; i++) expect((await settle(sql.unsafe(`select * from ${table}`)))?.code).toBe("42501");
      await sql`select 1`;
      for (let i = 0; i < 4; i++) await settle(sql.unsafe(`select * from ${table}`));
      expect(sql.health().status).toBe("healthy");
      await settle(sql.unsafe(`select * from ${table}`));
      expect(sql.health().status).toBe("failed");
      expect(sql.health().reasons.join("\n")).toContain(`permission denied for table ${table}`);
    } finally {
      await sql.close({ timeout: 1 });
      await admin.unsafe(`drop table if exists ${table}`);
      await admin.unsafe(`drop role if exists ${role}`);
    }
  });
});

describe("monitor and breaker rejections", () => {
  test("rejections count in the error rate and stay out of latency", async () => {
    const monitoring = monitor({ metricProducer: false, health: { minCalls: 5 } });
    const guard = breaker({
      activeProbing: false,
      initialState: { replica: { state: "open", category: "connection", until: Date.now() + 600_000, opens: 1 } },
    });
    const sql = pilot(
      { primary: postgres(testUrl(), { max: 2, ...quiet }), replica: postgres(testUrl(), { max: 2, ...quiet }) },
      { interceptors: [monitoring, guard] },
    );
    try {
      for (let i = 0; i < 10; i++) await sql`select 1`;
      const before = monitoring.stats();
      for (let i = 0; i < 10; i++) expect(await settle(sql.lane("replica")`select 1`)).toBeInstanceOf(CircuitOpenError);
      const after = monitoring.stats();
      expect(after.errors.rejected).toBe(10);
      expect(after.window).toMatchObject({ operations: 20, failures: 10, errorRate: 0.5 });
      // Latency is that of the calls that ran: unchanged by ten rejections.
      expect(after.latency).toEqual(before.latency);
      expect([after.window.p95Ms, after.window.meanMs]).toEqual([before.window.p95Ms, before.window.meanMs]);
      const health = sql.health();
      expect(health.status).toBe("failed");
      expect(health.reasons.join("\n")).toMatch(/monitor: error rate 50% over the last \d+ s \(10 of 20/);
    } finally {
      await sql.close({ timeout: 1 });
    }
  });
});
