/**
 * A Node http app with pgpilot's observability: /metrics, /health/database, /stats, /users.
 * Node 20 does not run TypeScript, so this imports the built package by its name:
 *
 *   npm run build
 *   DATABASE_URL=postgres://… node examples/node-server.mjs        # PORT=3000 by default
 */
import { createServer } from "node:http";
import postgres from "postgres";
import { monitor, pilot, tracing } from "pgpilot";
import { healthHandler, metricsHandler } from "pgpilot/prometheus";

const url = process.env.DATABASE_URL;
if (!url) throw new Error("set DATABASE_URL (e.g. postgres://postgres@localhost:5432/postgres)");

const metrics = metricsHandler(); // before pilot(): registers the global MeterProvider
const sql = pilot(postgres(url, { max: 10 }), {
  name: "app",
  interceptors: [tracing(), monitor({ slowQueryMs: 150 })],
});
const health = healthHandler(sql);

/** Write a web Response to a Node response. */
async function reply(response, res) {
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(await response.text());
}

const server = createServer(async (req, res) => {
  try {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path === "/metrics") return reply(await metrics(), res);
    if (path === "/health/database") return reply(health(), res);
    if (path === "/stats") return reply(Response.json(sql.stats()), res);
    if (path === "/users") {
      return reply(Response.json(await sql`select usename as name from pg_user order by usename limit ${10}`), res);
    }
    return reply(new Response("not found\n", { status: 404 }), res);
  } catch (error) {
    res.writeHead(500).end(String(error?.code ?? "error"));
  }
});
server.listen(Number(process.env.PORT ?? 3000), () => {
  console.log(`listening on http://localhost:${server.address().port}/`);
});

const stop = async () => {
  server.close();
  await sql.close({ timeout: 2 });
  await metrics.shutdown();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
