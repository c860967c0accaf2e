import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import { testUrl } from "./db.ts";
import { Cleanup, until } from "./kit.ts";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";
import { type PostgresServer, startPostgres, startReplica } from "./postgres.ts";

// bunfig.toml's `[test] timeout` is ignored by bun 1.3.5 (the default stays 5 s); this file starts servers.
setDefaultTimeout(60_000);

/** Clients, proxies and servers the tests opened, closed newest first after all. */
const cleanup = new Cleanup();

function client(url: string, options: postgres.Options<Record<string, never>> = {}): postgres.Sql {
  const sql = postgres(url, { max: 1, onnotice: () => {}, ...options });
  return cleanup.track(sql);
}

function target(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

afterAll(async () => {
  await cleanup.run();
});

describe("preload server", () => {
  test("answers select 1 through postgres.js", async () => {
    const sql = client(testUrl());
    const [row] = await sql`select 1 as one`;
    expect(row!.one).toBe(1);
  });

  test("testUrl() is a postgres URL", () => {
    expect(testUrl()).toMatch(/^postgres(ql)?:\/\//);
  });
});

describe("startPostgres", () => {
  let server: PostgresServer;

  beforeAll(async () => {
    server = await startPostgres({ name: "support-test", settings: { application_name: "support-test" } });
    cleanup.defer(() => server.destroy());
  });

  test("reports where it runs", async () => {
    expect(server.host).toBe("127.0.0.1");
    expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
    expect(await server.psql("show synchronous_commit")).toBe("on");
    expect(await server.psql("show fsync")).toBe("off");
    expect(await server.psql("show wal_level")).toBe("replica");
    expect(await server.psql("show max_connections")).toBe("300");
    expect(await server.psql("show application_name")).not.toBe(""); // settings applied without breaking psql
  });

  test("keeps a committed row across an immediate stop and a start", async () => {
    const sql = client(server.url);
    await sql`create table survivors (id int primary key, note text)`;
    await sql`insert into survivors values (1, 'committed before the crash')`;

    await server.stop("immediate");
    await expect(server.psql("select 1")).rejects.toThrow();
    await server.start();

    const fresh = client(server.url);
    const rows = await fresh`select id, note from survivors`;
    expect(rows.map((r) => ({ ...r }))).toEqual([{ id: 1, note: "committed before the crash" }]);
    // The port and URL did not change.
    expect(await server.psql("select count(*) from survivors")).toBe("1");
  });

  test("startReplica streams from the primary", async () => {
    const replica = await startReplica(server);
    cleanup.defer(() => replica.destroy());
    expect(replica.port).not.toBe(server.port);
    expect(await replica.psql("select pg_is_in_recovery()")).toBe("t");

    await server.psql("create table replicated (x int); insert into replicated values (42)");
    await until(async () => {
      try {
        return (await replica.psql("select x from replicated")) === "42";
      } catch {
        return false; // the table has not arrived yet
      }
    }, { message: "the row to reach the replica", timeoutMs: 15_000 });

    await replica.stop("immediate");
    await replica.start();
    expect(await replica.psql("select x from replicated")).toBe("42");
  });
});

describe("fault proxy", () => {
  let proxy: FaultProxy;

  beforeAll(async () => {
    proxy = await startFaultProxy({ target: target(testUrl()) });
    cleanup.defer(() => proxy.close());
  });

  test("url() points a postgres URL at the proxy", () => {
    const rewritten = new URL(proxy.url("postgres://alice@db.example:5432/app?sslmode=disable"));
    expect(rewritten.hostname).toBe("127.0.0.1");
    expect(rewritten.port).toBe(String(proxy.port));
    expect(rewritten.username).toBe("alice");
    expect(rewritten.pathname).toBe("/app");
    expect(rewritten.search).toBe("?sslmode=disable");
  });

  test("forwards queries and counts bytes and connections", async () => {
    const before = { up: proxy.bytesFromClient, down: proxy.bytesToClient, accepted: proxy.connectionsAccepted };
    const sql = client(proxy.url(testUrl()));
    const [row] = await sql`select 'through the proxy' as via`;
    expect(row!.via).toBe("through the proxy");
    expect(proxy.connectionsAccepted).toBe(before.accepted + 1);
    expect(proxy.bytesFromClient).toBeGreaterThan(before.up);
    expect(proxy.bytesToClient).toBeGreaterThan(before.down);
  });

  test("adds latency without breaking queries", async () => {
    const sql = client(proxy.url(testUrl()));
    await sql`select 1`;
    const before = { up: proxy.bytesFromClient, down: proxy.bytesToClient };
    proxy.setLatency(30);
    try {
      const results = await Promise.all([1, 2, 3].map((n) => sql`select ${n}::int as n`));
      expect(results.map(([r]) => r!.n)).toEqual([1, 2, 3]);
    } finally {
      proxy.setLatency(0);
    }
    expect(proxy.bytesFromClient).toBeGreaterThan(before.up);
    expect(proxy.bytesToClient).toBeGreaterThan(before.down);
  });

  test("refuse() makes new connections fail with ECONNREFUSED", async () => {
    const live = client(proxy.url(testUrl()));
    await live`select 1`;
    proxy.refuse(true);
    try {
      const sql = client(proxy.url(testUrl()), { connect_timeout: 5 });
      const error = await sql`select 1`.then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(error).toBeDefined();
      expect(error!.code).toBe("ECONNREFUSED");
      // Connections made before refuse() keep working.
      const [row] = await live`select 2 as two`;
      expect(row!.two).toBe(2);
    } finally {
      proxy.refuse(false);
    }
    // Listening again on the same port.
    const again = client(proxy.url(testUrl()));
    expect((await again`select 3 as three`)[0]!.three).toBe(3);
  });

  test("blackhole() makes a connect time out", async () => {
    proxy.blackhole(true);
    try {
      const sql = client(proxy.url(testUrl()), { connect_timeout: 1 });
      const error = await sql`select 1`.then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(error).toBeDefined();
      expect(error!.code).toBe("CONNECT_TIMEOUT");
    } finally {
      proxy.blackhole(false);
    }
    const sql = client(proxy.url(testUrl()));
    expect((await sql`select 4 as four`)[0]!.four).toBe(4);
  });

  test("resetAll() rejects an in-flight query", async () => {
    const sql = client(proxy.url(testUrl()));
    await sql`select 1`;
    const sent = proxy.bytesFromClient;
    const sleeping = sql`select pg_sleep(5)`.then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    await until(() => proxy.bytesFromClient > sent, { message: "the query to reach the proxy", timeoutMs: 15_000 });
    proxy.resetAll();
    const error = await sleeping;
    expect(error).toBeDefined();
    // Node sends a real RST (ECONNRESET); Bun's resetAndDestroy() sends a FIN (CONNECTION_CLOSED).
    expect(error!.code).toMatch(/^(ECONNRESET|CONNECTION_CLOSED)$/);
    expect(proxy.openConnections).toBe(0);
    // The client reconnects afterwards.
    expect((await sql`select 5 as five`)[0]!.five).toBe(5);
  });
});
