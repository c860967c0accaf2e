/**
 * examples/otlp.ts really exports: run it against a local HTTP endpoint standing in for an
 * OpenTelemetry collector and check that metrics and traces arrive at /v1/metrics and /v1/traces.
 */
import { afterAll, expect, test } from "bun:test";
import { createServer } from "node:http";
import { join } from "node:path";
import { testUrl } from "../support/db.ts";

const received: { path: string; bytes: number; type: string; body: string }[] = [];
const collector = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks);
    received.push({
      path: request.url ?? "",
      bytes: body.length,
      type: String(request.headers["content-type"]),
      // JSON or protobuf: metric names are plain UTF-8 in both.
      body: body.toString("latin1"),
    });
    response.writeHead(200, { "content-type": "application/json" });
    response.end("{}");
  });
});
await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
const port = (collector.address() as { port: number }).port;
afterAll(() => new Promise<void>((resolve) => collector.close(() => resolve())));

test("examples/otlp.ts pushes metrics and traces to the collector URL", async () => {
  const root = join(import.meta.dir, "..", "..");
  // A child process, not spawnSync: this process must keep serving the collector meanwhile.
  const child = Bun.spawn([process.execPath, join(root, "examples", "otlp.ts")], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: testUrl(), OTLP_URL: `http://127.0.0.1:${port}` },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, out, err] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]);
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  expect(out).toContain(`sent to http://127.0.0.1:${port}`);
  const paths = new Set(received.map((r) => r.path));
  expect(paths.has("/v1/metrics")).toBe(true);
  expect(paths.has("/v1/traces")).toBe(true);
  expect(received.every((r) => r.bytes > 0)).toBe(true);
  // The duration histogram comes through the example's createMetricProducer(), the slow-query
  // counter through an SDK instrument: both reach the collector, after the pilot was closed.
  const metricsBodies = received.filter((r) => r.path === "/v1/metrics").map((r) => r.body).join("\n");
  expect(metricsBodies).toContain("db.client.operation.duration");
  expect(metricsBodies).toContain("pgpilot.slow_queries");
}, 60_000);

