/**
 * examples/otlp.ts really exports: run it against a local HTTP endpoint standing in for an
 * OpenTelemetry collector and check that metrics and traces arrive at /v1/metrics and /v1/traces.
 */
import { afterAll, expect, test } from "bun:test";
import { createServer } from "node:http";
import { join } from "node:path";
import { testUrl } from "../support/db.ts";

const received: { path: string; bytes: number; type: string }[] = [];
const collector = createServer((request, response) => {
  let bytes = 0;
  request.on("data", (chunk: Buffer) => (bytes += chunk.length));
  request.on("end", () => {
    received.push({ path: request.url ?? "", bytes, type: String(request.headers["content-type"]) });
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
}, 60_000);

