/**
 * A Bun.serve app with pgpilot's observability: /metrics (Prometheus text), /health/database
 * (200, or 503 when failed), /stats (sql.stats()), and /users to make some traffic.
 *
 *   DATABASE_URL=postgres://… bun examples/bun-server.ts      # PORT=3000 by default
 *   curl localhost:3000/users; curl localhost:3000/metrics; curl localhost:3000/health/database
 *
 * Point Prometheus at /metrics and import examples/observability/grafana-dashboard.json.
 */
import postgres from "postgres";
import { monitor, pilot, tracing } from "../mod.ts";
import { healthHandler, metricsHandler } from "../lib/prometheus.ts";

const url = process.env.DATABASE_URL;
if (!url) throw new Error("set DATABASE_URL (e.g. postgres://postgres@localhost:5432/postgres)");

// First the metrics handler: it registers the global MeterProvider that monitor() reads when
// pilot() attaches it.
const metrics = metricsHandler();
const monitoring = monitor({ slowQueryMs: 150 });
monitoring.onSlowQuery((event) => console.warn(`slow ${event.command} ${event.collection ?? ""} ${event.durationMs} ms`));
const sql = pilot(postgres(url, { max: 10 }), { name: "app", interceptors: [tracing(), monitoring] });
const health = healthHandler(sql);

const server = Bun.serve({
  port: Number(process.env.PORT ?? 3000),
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/metrics") return metrics(request);
    if (path === "/health/database") return health(request);
    if (path === "/stats") return Response.json(sql.stats());
    if (path === "/users") {
      const rows = await sql`select usename as name from pg_user order by usename limit ${10}`;
      return Response.json(rows);
    }
    return new Response("not found\n", { status: 404 });
  },
});
console.log(`listening on ${server.url}`);

const stop = async () => {
  server.stop();
  await sql.close({ timeout: 2 });
  await metrics.shutdown();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
