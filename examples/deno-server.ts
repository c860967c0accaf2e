/**
 * A Deno.serve app with pgpilot's observability: /metrics, /health/database, /stats, /users.
 *
 *   npm ci   # Deno resolves postgres and @opentelemetry/* from node_modules
 *   DATABASE_URL=postgres://… npx deno run --allow-net --allow-env --allow-read --allow-sys examples/deno-server.ts
 */
import postgres from "postgres";
import { monitor, pilot, tracing } from "../mod.ts";
import { healthHandler, metricsHandler } from "../lib/prometheus.ts";

const url = Deno.env.get("DATABASE_URL");
if (!url) throw new Error("set DATABASE_URL (e.g. postgres://postgres@localhost:5432/postgres)");

const metrics = metricsHandler(); // before pilot(): registers the global MeterProvider
const sql = pilot(postgres(url, { max: 10 }), {
  name: "app",
  interceptors: [tracing(), monitor({ slowQueryMs: 150 })],
});
const health = healthHandler(sql);

const server = Deno.serve({ port: Number(Deno.env.get("PORT") ?? 3000), onListen: ({ port }) => {
  console.log(`listening on http://localhost:${port}/`);
} }, async (request) => {
  const path = new URL(request.url).pathname;
  if (path === "/metrics") return metrics(request);
  if (path === "/health/database") return health(request);
  if (path === "/stats") return Response.json(sql.stats());
  if (path === "/users") return Response.json(await sql`select usename as name from pg_user order by usename limit ${10}`);
  return new Response("not found\n", { status: 404 });
});

Deno.addSignalListener("SIGINT", async () => {
  await server.shutdown();
  await sql.close({ timeout: 2 });
  await metrics.shutdown();
  Deno.exit(0);
});
