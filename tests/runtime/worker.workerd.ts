/**
 * examples/worker under workerd (Miniflare, local only), against real PostgreSQL servers.
 * Run by `npm test` as its own step: `bun test ./tests/runtime/worker.workerd.ts` (the name keeps
 * it out of the main `bun test` run).
 *
 * Two instances of the same worker: "main" on the shared test database (results, scrape, health,
 * spans), "outage" on a throwaway server this file stops and starts (the breaker).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { classify } from "../../mod.ts";
import { testUrl } from "../support/db.ts";
import { type PostgresServer, startPostgres } from "../support/postgres.ts";
import { until } from "../support/kit.ts";
import { bundleWorker, readWranglerConfig } from "./worker-bundle.ts";

const dir = fileURLToPath(new URL("../../.tmp/worker/", import.meta.url));
let mf: Miniflare;
let outageDb: PostgresServer;

/** What a Miniflare worker stub offers (its types come from @cloudflare/workers-types, not installed). */
type Fetcher = { fetch(url: string): Promise<Response> };
let main: Fetcher;
let outage: Fetcher;

async function get(worker: Fetcher, path: string): Promise<{ status: number; text: string }> {
  const response = await worker.fetch(`http://worker${path}`);
  return { status: response.status, text: await response.text() };
}
const getJson = async (worker: Fetcher, path: string) => {
  const { status, text } = await get(worker, path);
  return { status, body: JSON.parse(text) };
};

/** The value of the first sample of `name` whose labels include every given pair. */
function sample(scrape: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of scrape.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(" ").at(-1));
  }
  return undefined;
}

beforeAll(async () => {
  const config = readWranglerConfig();
  const [code, server] = await Promise.all([bundleWorker(config), startPostgres({ name: "worker-outage" })]);
  outageDb = server;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}worker.js`, code);
  const worker = (name: string, url: string) => ({
    name,
    modulesRoot: dir,
    modules: [{ type: "ESModule" as const, path: `${dir}worker.js`, contents: code }],
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    bindings: { ...config.vars, DATABASE_URL: url, RECOVERY_MS: "200" },
  });
  mf = new Miniflare({ workers: [worker("main", testUrl()), worker("outage", outageDb.url)] });
  await mf.ready;
  main = (await mf.getWorker("main")) as unknown as Fetcher;
  outage = (await mf.getWorker("outage")) as unknown as Fetcher;
}, 60_000);

afterAll(async () => {
  await mf?.dispose();
  await outageDb?.destroy();
}, 30_000);

describe("Worker on workerd", () => {
  test("query route: results through pilot() over cloudflare:sockets", async () => {
    for (const n of [41, 1, -1]) {
      expect(await getJson(main, `/query?n=${n}`)).toEqual({ status: 200, body: { answer: n + 1 } });
    }
  });

  test("/metrics: metricsHandler() scrape counts the queries of earlier requests", async () => {
    const { status, text } = await get(main, "/metrics");
    expect(status).toBe(200);
    const count = sample(text, "db_client_operation_duration_seconds_count", { db_operation_name: "SELECT" }) ??
      sample(text, "db_client_operation_duration_count", { db_operation_name: "SELECT" });
    expect(count).toBeGreaterThanOrEqual(3);
    expect(sample(text, "pgpilot_breaker_state", { pgpilot_lane: "primary" })).toBe(0);
    // One pilot per request: the series must not multiply with the requests.
    const states = text.split("\n").filter((line) => line.startsWith("pgpilot_breaker_state{"));
    expect(states.length).toBe(1);
  });

  test("/health/database: healthHandler() answers 200 healthy", async () => {
    const { status, body } = await getJson(main, "/health/database");
    expect(status).toBe(200);
    expect(body.status).toBe("healthy");
    expect(body.checks.breaker.details.primary).toBe("closed");
  });

  test("tracing: a SELECT span per query (BasicTracerProvider, no context manager)", async () => {
    const { body } = await getJson(main, "/spans");
    expect(body.filter((s: { name: string; status: number }) => s.name === "SELECT" && s.status !== 2).length)
      .toBeGreaterThanOrEqual(3);
  });

  test("breaker: opens when the database stops, rejects without I/O, closes after it is back", async () => {
    expect(await getJson(outage, "/query?n=1")).toEqual({ status: 200, body: { answer: 2 } });
    await outageDb.stop("immediate");
    const errors: string[] = [];
    await until(async () => {
      const { status, body } = await getJson(outage, "/query?n=1");
      expect(status).toBe(503);
      errors.push(body.error);
      return body.error === "CIRCUIT_OPEN";
    }, { message: "the circuit opens" });
    expect(errors.at(-1)).toBe("CIRCUIT_OPEN");
    // workerd's connect() error has no code: classify() knows it by its message.
    expect(errors[0]).toBe("UNKNOWN");
    expect(classify(new Error("proxy request failed, cannot connect to the specified address"))).toBe("connection");
    const health = await getJson(outage, "/health/database");
    expect(health.status).toBe(503);
    expect(health.body.status).toBe("failed");
    expect(sample((await get(outage, "/metrics")).text, "pgpilot_breaker_state", { pgpilot_lane: "primary" })).toBe(2);

    await outageDb.start();
    await until(async () => (await get(outage, "/query?n=1")).status === 200, { message: "a query succeeds again" });
    expect((await getJson(outage, "/health/database")).body.checks.breaker.details.primary).toBe("closed");
    expect(sample((await get(outage, "/metrics")).text, "pgpilot_breaker_state", { pgpilot_lane: "primary" })).toBe(0);
  });
});
