// The runtime matrix: core behaviours of pgpilot against the real PostgreSQL, written once and
// run by a thin adapter per runtime (bun.test.ts under bun:test, node.mjs under Node 20, deno.ts
// under `deno test`). Plain JavaScript so Node 20 runs it without a TypeScript loader.
//
// Each case gets `deps`: { pgpilot (the package's main module), prometheus (pgpilot/prometheus),
// url (DATABASE_URL), runtime (a label) } and throws on failure. No timing thresholds: waits are
// bounded polls that fail with what they waited for.
import { createConnection, createServer } from "node:net";
import postgres from "postgres";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

function assert(ok, message) {
  if (!ok) throw new Error(message);
}
function equal(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  assert(a === e, `${what}: expected ${e}, got ${a}`);
}
async function until(what, condition, timeoutMs = 15_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
const raw = (url) => postgres(url, { max: 1, onnotice: () => {} });

/**
 * A TCP proxy on 127.0.0.1 in front of PostgreSQL that can "stop the database": down() destroys
 * every connection and refuses new ones, up() accepts again. node:net on every runtime.
 */
async function faultProxy(url) {
  const target = new URL(url);
  const sockets = new Set();
  let down = false;
  const server = createServer((client) => {
    if (down) return client.destroy();
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const proxied = new URL(url);
  proxied.port = String(server.address().port);
  proxied.hostname = "127.0.0.1";
  return {
    url: proxied.toString(),
    down() {
      down = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    up() {
      down = false;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** @type {{ name: string, run: (deps: any) => Promise<void> }[]} */
export const cases = [
  {
    name: "drop-in: results, transactions and errors through pilot()",
    async run({ pgpilot, url, runtime }) {
      const sql = pgpilot.pilot(postgres(url, { max: 2, onnotice: () => {} }), { name: runtime, interceptors: [] });
      try {
        const [{ answer }] = await sql`select ${41}::int + 1 as answer`;
        equal(answer, 42, "tagged template");
        equal((await sql.unsafe("select generate_series(1, 3) as n")).map((r) => r.n), [1, 2, 3], "unsafe");
        const n = await sql.begin(async (tx) => (await tx`select 1 as n`)[0].n);
        equal(n, 1, "transaction");
        const error = await sql`select 1/0`.catch((e) => e);
        equal(error?.code, "22012", "error passthrough");
        assert(error instanceof postgres.PostgresError, "error is postgres.js's PostgresError");
      } finally {
        await sql.close({ timeout: 1 });
      }
    },
  },
  {
    name: "breaker: opens when the database stops, closes when it is back",
    async run({ pgpilot, url, runtime }) {
      const proxy = await faultProxy(url);
      const circuit = pgpilot.breaker({ thresholds: { connection: 1 }, recoveryMs: 100, halfOpenRequests: 1, activeProbing: false });
      const sql = pgpilot.pilot(postgres(proxy.url, { max: 1, connect_timeout: 2, onnotice: () => {} }), {
        name: runtime,
        interceptors: [pgpilot.deadline({ timeoutMs: 3_000 }), circuit],
      });
      try {
        equal((await sql`select 1 as n`)[0].n, 1, "before the stop");
        proxy.down();
        const seen = [];
        await until("CIRCUIT_OPEN", async () => {
          const error = await sql`select 1 as n`.then(() => undefined, (e) => e);
          seen.push(error?.code);
          return error?.code === "CIRCUIT_OPEN";
        });
        equal(circuit.stats().lanes.primary.state, "open", `state after ${seen.join(",")}`);
        proxy.up();
        await until("a query succeeds again", () => sql`select 1 as n`.then(() => true, () => false));
        equal(circuit.stats().lanes.primary.state, "closed", "state after recovery");
      } finally {
        await sql.close({ timeout: 1 });
        await proxy.close();
      }
    },
  },
  {
    name: "deadline: expiry rejects and cancels the query on the server",
    async run({ pgpilot, url, runtime }) {
      const marker = `matrix_deadline_${runtime.replace(/\W/g, "_")}_${Date.now()}`;
      const sql = pgpilot.pilot(postgres(url, { max: 1, onnotice: () => {} }), {
        name: runtime,
        interceptors: [pgpilot.deadline({ timeoutMs: 150 })],
      });
      const observer = raw(url);
      try {
        const error = await sql.unsafe(`select pg_sleep(30) /* ${marker} */`).then(() => undefined, (e) => e);
        equal(error?.code, "DEADLINE_EXCEEDED", "error code");
        await until("the server stops running it", async () => {
          const rows = await observer`select 1 from pg_stat_activity where state = 'active' and query like ${"%" + marker + "%"} and pid <> pg_backend_pid()`;
          return rows.length === 0;
        });
        equal((await sql`select 1 as n`)[0].n, 1, "the connection is usable afterwards");
      } finally {
        await sql.close({ timeout: 1 });
        await observer.end({ timeout: 1 });
      }
    },
  },
  {
    name: "retry: a transaction failing with 40001 is run again",
    async run({ pgpilot, url, runtime }) {
      const sql = pgpilot.pilot(postgres(url, { max: 1, onnotice: () => {} }), {
        name: runtime,
        interceptors: [pgpilot.retry({ baseDelayMs: 1, maxDelayMs: 5 })],
      });
      try {
        let attempts = 0;
        const result = await sql.begin(async (tx) => {
          attempts++;
          if (attempts === 1) await tx`do $$ begin raise exception using errcode = '40001'; end $$`;
          return (await tx`select ${attempts}::int as attempt`)[0].attempt;
        });
        equal([attempts, result], [2, 2], "attempts, result");
        equal(sql.stats().retry.retries.serialization, 1, "serialization retries counted");
      } finally {
        await sql.close({ timeout: 1 });
      }
    },
  },
  {
    name: "adaptive: a fixed limit bounds the operations in flight",
    async run({ pgpilot, url, runtime }) {
      let inFlight = 0;
      let peak = 0;
      const counter = {
        name: "counter",
        async intercept(op, next) {
          if (op.parent) return next();
          peak = Math.max(peak, ++inFlight);
          try {
            return await next();
          } finally {
            inFlight--;
          }
        },
      };
      const sql = pgpilot.pilot(postgres(url, { max: 6, onnotice: () => {} }), {
        name: runtime,
        interceptors: [pgpilot.adaptive({ algorithm: "fixed", initial: 2, min: 2, max: 2, prewarm: false }), counter],
      });
      try {
        const rows = await Promise.all(Array.from({ length: 12 }, (_, i) => sql`select ${i}::int as i, pg_sleep(0.02)`));
        equal(rows.map((r) => r[0].i), Array.from({ length: 12 }, (_, i) => i), "every query answered");
        equal(peak, 2, "peak in flight below the limiter");
      } finally {
        await sql.close({ timeout: 1 });
      }
    },
  },
  {
    name: "monitor: counts queries, transactions and errors",
    async run({ pgpilot, url, runtime }) {
      const sql = pgpilot.pilot(postgres(url, { max: 2, onnotice: () => {} }), { name: runtime, interceptors: [pgpilot.monitor()] });
      try {
        await sql`select 1`;
        await sql`select 2`;
        await sql.begin(async (tx) => tx`select 3`);
        await sql`select 1/0`.catch(() => {});
        const { totals } = sql.stats().monitor;
        equal([totals.queries, totals.transactions, totals.errors], [4, 1, 1], "queries, transactions, errors");
      } finally {
        await sql.close({ timeout: 1 });
      }
    },
  },
  {
    name: "tracing: a CLIENT span per query, transaction spans with children",
    async run({ pgpilot, url, runtime }) {
      const exporter = new InMemorySpanExporter();
      const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      const sql = pgpilot.pilot(postgres(url, { max: 2, onnotice: () => {} }), {
        name: runtime,
        tracerProvider,
        interceptors: [pgpilot.tracing()],
      });
      try {
        await sql`select 1`;
        await sql.begin(async (tx) => tx`select 2`);
        await sql`select 1/0`.catch(() => {});
        const spans = exporter.getFinishedSpans();
        const names = spans.map((s) => s.name);
        assert(names.filter((n) => n === "SELECT").length === 3, `three SELECT spans in ${names.join(",")}`);
        const tx = spans.find((s) => s.name !== "SELECT");
        assert(tx, `a transaction span in ${names.join(",")}`);
        const txId = tx.spanContext().spanId;
        const children = spans.filter((s) => (s.parentSpanContext?.spanId ?? s.parentSpanId) === txId);
        equal(children.length, 1, "children of the transaction span");
        equal(spans.filter((s) => s.status.code === 2).length, 1, "spans with error status");
        equal(spans[0].kind, 2, "span kind CLIENT");
      } finally {
        await sql.close({ timeout: 1 });
        await tracerProvider.shutdown();
      }
    },
  },
  {
    name: "prometheus: metricsHandler() serves what monitor() recorded",
    async run({ pgpilot, prometheus, url, runtime }) {
      const metrics = prometheus.metricsHandler({ global: false });
      const sql = pgpilot.pilot(postgres(url, { max: 2, onnotice: () => {} }), {
        name: runtime,
        meterProvider: metrics.meterProvider,
        interceptors: [pgpilot.monitor()],
      });
      try {
        await sql`select 1`;
        await sql`select 2`;
        const response = await metrics(new Request("http://localhost/metrics"));
        equal(response.status, 200, "status");
        assert(response.headers.get("content-type")?.startsWith("text/plain"), "content type");
        const text = await response.text();
        const line = text.split("\n").find((l) => /^db_client_operation_duration(_seconds)?_count\{/.test(l) && l.includes('db_operation_name="SELECT"'));
        assert(line, `a SELECT duration count in\n${text.slice(0, 2000)}`);
        equal(Number(line.split(" ").at(-1)), 2, "SELECT count");
      } finally {
        await sql.close({ timeout: 1 });
        await metrics.shutdown();
      }
    },
  },
];
