/**
 * A Cloudflare Worker: postgres.js wrapped in pilot() with tracing, monitor, deadline and breaker.
 *
 *   GET /query?n=41       → {"answer":42} (select $1::int + 1 through pilot)
 *   GET /metrics          → Prometheus text (metricsHandler)
 *   GET /health/database  → sql.health() as JSON, 200 or 503 (healthHandler)
 *   GET /stats            → sql.stats() as JSON
 *
 * Workers differ from a long-running server in ways that shape this file:
 * - No I/O and no timers in the global scope: pilot() and postgres() are created on the first
 *   request, not at import.
 * - A socket belongs to the request that opened it: a pool shared across requests fails
 *   ("Cannot perform I/O on behalf of a different request"). So postgres.js and pilot() are made
 *   per request and closed with ctx.waitUntil(); what must outlive a request lives at module
 *   scope without I/O: the metrics provider (counters and the retired monitor histograms fold into
 *   it), the tracer provider, and the breaker's state (toJSON() → breaker({ initialState })).
 * - No timers between requests: the breaker's active probing is off; after recoveryMs the next
 *   user call is the half-open probe.
 * - The breaker's snapshot carries its state (closed / open until / half-open), not the failures
 *   counted toward a threshold nor the successes of a half-open circuit: with a breaker per
 *   request, a threshold of 1 and halfOpenRequests 1 are what a snapshot can honour.
 * - performance.now() and Date.now() advance only across I/O: durations are I/O time.
 *
 * @module
 */
import postgres from "postgres";
// In an app: from "pgpilot" and "pgpilot/prometheus".
import { breaker, deadline, healthHandler, monitor, pilot, tracing } from "../../mod.ts";
import { metricsHandler } from "../../lib/prometheus.ts";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

export interface Env {
  DATABASE_URL: string;
  /** Deadline per operation, ms (a var in wrangler.jsonc). */
  DEADLINE_MS?: string;
  /** Breaker recovery time, ms. */
  RECOVERY_MS?: string;
}

type BreakerState = ReturnType<ReturnType<typeof breaker>["toJSON"]>;

// Module scope: no I/O, no timers (both are refused outside a request).
const metrics = metricsHandler({ global: false });
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
let breakerState: BreakerState | undefined;

function connect(env: Env) {
  const circuit = breaker({
    activeProbing: false,
    recoveryMs: Number(env.RECOVERY_MS ?? 10_000),
    thresholds: { connection: 1, timeout: 1 },
    halfOpenRequests: 1,
    initialState: breakerState,
    meterProvider: metrics.meterProvider,
  });
  const sql = pilot(
    postgres(env.DATABASE_URL, { max: 2, connect_timeout: 2, idle_timeout: 1, fetch_types: false, onnotice: () => {} }),
    {
      name: "worker",
      meterProvider: metrics.meterProvider,
      tracerProvider,
      interceptors: [tracing(), monitor(), deadline({ timeoutMs: Number(env.DEADLINE_MS ?? 2_000) }), circuit],
    },
  );
  return { sql, circuit };
}

const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

export default {
  async fetch(request: Request, env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/metrics") return metrics(request);
    if (url.pathname === "/spans") {
      return json(spans.getFinishedSpans().map((s) => ({ name: s.name, status: s.status.code })));
    }
    const { sql, circuit } = connect(env);
    try {
      if (url.pathname === "/health/database") return healthHandler(sql)(request);
      if (url.pathname === "/stats") return json(sql.stats());
      if (url.pathname === "/query") {
        try {
          const [{ answer }] = await sql`select ${Number(url.searchParams.get("n") ?? 41)}::int + 1 as answer`;
          return json({ answer });
        } catch (error) {
          const e = error as { code?: string; message?: string };
          return json({ error: e.code ?? "UNKNOWN", message: e.message }, 503);
        }
      }
      return new Response("not found", { status: 404 });
    } finally {
      breakerState = circuit.toJSON();
      ctx.waitUntil(sql.close({ timeout: 1 }));
    }
  },
};
