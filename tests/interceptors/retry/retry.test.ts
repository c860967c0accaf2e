/**
 * retry() against the real server: a real serialization failure is retried and both
 * transactions commit exactly once; a read that lost its connection is re-sent (tagged and
 * unsafe); a write outside a transaction is never retried; the deadline stops the retries.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { ConfigError, DeadlineExceededError } from "../../../lib/shared/errors.ts";
import { deadline } from "../../../lib/interceptors/deadline/index.ts";
import { retry, type RetryEvent } from "../../../lib/interceptors/retry/index.ts";
import type { Interceptor } from "../../../lib/core/interceptor.ts";
import { pilot } from "../../../lib/core/pilot.ts";
import { testUrl } from "../../support/db.ts";
import { type FaultProxy, startFaultProxy } from "../../support/fault-proxy.ts";
import { until } from "../../support/kit.ts";
import { recorder } from "../../support/recorder.ts";

const suffix = Math.random().toString(36).slice(2, 8);
const accounts = `retry_accounts_${suffix}`;
const writes = `retry_writes_${suffix}`;
const admin = postgres(testUrl(), { max: 2, onnotice: () => {} });
let proxy: FaultProxy;

beforeAll(async () => {
  const target = new URL(testUrl());
  proxy = await startFaultProxy({ target: { host: target.hostname, port: Number(target.port) } });
  await admin`create table ${admin(accounts)} (k text not null, v int not null, tag text)`;
  await admin`create table ${admin(writes)} (tag text not null)`;
});

afterAll(async () => {
  await admin`drop table if exists ${admin(accounts)}, ${admin(writes)}`;
  await admin.end({ timeout: 1 });
  await proxy.close();
});

describe("retry", () => {
  test("a serialization failure between two SERIALIZABLE transactions is retried; both commit exactly once", async () => {
    await admin`insert into ${admin(accounts)} (k, v) values ('a', 1), ('b', 1)`;
    const retries = retry({ maxAttempts: 5, baseDelayMs: 5 });
    const seen: RetryEvent[] = [];
    retries.onRetry((event) => seen.push(event));
    const sql = pilot(postgres(testUrl(), { max: 4, onnotice: () => {} }), { interceptors: [retries] });
    // Both read before either writes (write skew): SSI must abort one of them.
    let arrived = 0;
    let bothRead!: () => void;
    const barrier = new Promise<void>((resolve) => (bothRead = resolve));
    const runs = { t1: 0, t2: 0 };
    const transfer = (tag: "t1" | "t2", read: string, write: string) =>
      sql.begin("isolation level serializable", async (tx) => {
        runs[tag]++;
        const [{ total }] = await tx`select coalesce(sum(v), 0)::int as total from ${tx(accounts)} where k = ${read}`;
        if (++arrived === 2) bothRead();
        await barrier;
        await tx`insert into ${tx(accounts)} (k, v, tag) values (${write}, ${total}, ${tag})`;
      });
    try {
      await Promise.all([transfer("t1", "a", "b"), transfer("t2", "b", "a")]);
      const rows = await admin`select tag, count(*)::int as n from ${admin(accounts)} where tag is not null group by tag order by tag`;
      expect(rows.map((r) => [r.tag, r.n])).toEqual([["t1", 1], ["t2", 1]]);
      expect(runs.t1 + runs.t2).toBe(3);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ kind: "transaction", reason: "serialization", code: "40001", attempt: 2 });
      expect(retries.stats()).toMatchObject({ retries: { serialization: 1 }, recovered: 1, exhausted: 0 });
    } finally {
      await sql.close({ timeout: 1 });
    }
  });

  test("a read that lost its connection is re-sent as a fresh query, tagged and unsafe", async () => {
    const inner = recorder("inner");
    const retries = retry({ baseDelayMs: 1 });
    const sql = pilot(postgres(proxy.url(testUrl()), { max: 2, onnotice: () => {} }), { interceptors: [retries, inner] });
    try {
      await sql`select 1`;
      const cases = [
        () => sql`select pg_sleep(0.3), ${"tagged"}::text as v`,
        () => sql.unsafe("select pg_sleep(0.3), $1::text as v", ["unsafe"]),
      ];
      for (const [index, make] of cases.entries()) {
        inner.clear();
        const sent = proxy.bytesFromClient;
        const result = make().then((rows) => rows);
        await until(() => proxy.bytesFromClient > sent, { message: "the query to reach the proxy", timeoutMs: 5_000 });
        proxy.resetAll();
        const rows = await result;
        expect(rows[0]!.v).toBe(index === 0 ? "tagged" : "unsafe");
        // One operation, two attempts through the rest of the chain.
        expect(inner.seen.length).toBe(2);
        expect(inner.seen[0]!.op).toBe(inner.seen[1]!.op);
        expect(inner.seen[1]!.op.attempt).toBe(2);
        expect(inner.seen.map((s) => s.outcome)).toEqual(["error", "ok"]);
      }
      expect(retries.stats()).toMatchObject({ retries: { connection: 2 }, recovered: 2 });
    } finally {
      await sql.close({ timeout: 1 });
    }
  });

  test("a write outside a transaction is never retried, even when its connection dies", async () => {
    const inner = recorder("inner");
    const retries = retry({ baseDelayMs: 1 });
    const sql = pilot(postgres(proxy.url(testUrl()), { max: 2, onnotice: () => {} }), { interceptors: [retries, inner] });
    try {
      await sql`select 1`;
      inner.clear();
      const sent = proxy.bytesFromClient;
      const result = sql`insert into ${sql(writes)} (tag) select 'lost-ack' from pg_sleep(0.3)`.then(
        () => undefined,
        (error) => error,
      );
      await until(() => proxy.bytesFromClient > sent, { message: "the insert to reach the proxy", timeoutMs: 5_000 });
      proxy.resetAll();
      const error = await result;
      expect(["ECONNRESET", "CONNECTION_CLOSED"]).toContain(error?.code);
      expect(inner.seen).toHaveLength(1);
      // The server did not notice the lost client and committed: a retry would have written twice.
      await until(async () => {
        const [{ running }] = await admin`
          select count(*)::int as running from pg_stat_activity where query like '%lost-ack%' and state = 'active'
            and pid <> pg_backend_pid()`;
        return running === 0;
      }, { message: "the insert to finish on the server", timeoutMs: 5_000 });
      const [{ n }] = await admin`select count(*)::int as n from ${admin(writes)} where tag = 'lost-ack'`;
      expect(n).toBe(1);
      expect(inner.seen).toHaveLength(1);
      expect(retries.stats().retries.connection).toBe(0);
    } finally {
      await sql.close({ timeout: 1 });
    }
  });

  test("the deadline stops the retries", async () => {
    const inner = recorder("inner");
    // Every attempt loses its connection (what retry() re-sends a read for).
    const lost: Interceptor = {
      name: "lost",
      intercept: async () => {
        await Bun.sleep(5);
        throw Object.assign(new Error("write CONNECTION_CLOSED"), { code: "CONNECTION_CLOSED" });
      },
    };
    const sql = pilot(postgres(testUrl(), { max: 2, onnotice: () => {} }), {
      interceptors: [deadline({ timeoutMs: 300 }), retry({ maxAttempts: 100, baseDelayMs: 10, maxDelayMs: 10 }), inner, lost],
    });
    try {
      const error = await sql`select 1`.catch((e) => e);
      expect(error).toBeInstanceOf(DeadlineExceededError);
      const attempts = inner.seen.length;
      expect(attempts).toBeGreaterThan(1);
      expect(attempts).toBeLessThan(100);
      // At most the attempt already under way when the deadline expired follows.
      await until(() => inner.open === 0, { message: "the last attempt to settle", timeoutMs: 5_000 });
      await Bun.sleep(100);
      expect(inner.seen.length).toBeLessThanOrEqual(attempts + 1);
      expect(inner.seen.every((s) => s.outcome === "error")).toBe(true);
    } finally {
      await sql.close({ timeout: 1 });
    }
  });

  test("a read that cannot connect is not retried: failing stays as fast as without retry()", async () => {
    const inner = recorder("inner");
    const events: RetryEvent[] = [];
    const retrying = retry({ maxAttempts: 5, baseDelayMs: 1 });
    retrying.onRetry((event) => events.push(event));
    const sql = pilot(postgres(proxy.url(testUrl()), { max: 2, onnotice: () => {} }), { interceptors: [retrying, inner] });
    proxy.refuse(true);
    try {
      // Each attempt would be one more failed connect, raising postgres.js's shared reconnect
      // backoff (the delay before any of the pool's connections tries again) for every caller.
      for (let i = 0; i < 3; i++) expect((await sql`select 1`.catch((e) => e)).code).toBe("ECONNREFUSED");
      expect(inner.seen).toHaveLength(3);
      expect(events).toEqual([]);
    } finally {
      proxy.refuse(false);
      await sql.close({ timeout: 1 });
    }
  });

  test("nothing is retried once the pilot is closed", async () => {
    const inner = recorder("inner");
    let closing: Promise<void> | undefined;
    const lost: Interceptor = {
      name: "lost",
      intercept: async () => {
        // The application closes the pool while the first attempt is failing.
        closing ??= sql.close({ timeout: 1 });
        throw Object.assign(new Error("CONNECTION_CLOSED"), { code: "CONNECTION_CLOSED" });
      },
    };
    const sql = pilot(postgres(testUrl(), { max: 1, onnotice: () => {} }), {
      interceptors: [retry({ maxAttempts: 5, baseDelayMs: 1 }), inner, lost],
    });
    expect((await sql`select 1`.catch((e) => e)).code).toBe("CONNECTION_CLOSED");
    await closing;
    expect(inner.seen).toHaveLength(1);
  });

  test("bad options are a ConfigError naming the field", () => {
    expect(() => retry({ maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => retry({ baseDelayMs: 100, maxDelayMs: 10 })).toThrow(/maxDelayMs/);
    expect(() => retry({ attempts: 3 } as any)).toThrow(ConfigError);
  });
});
