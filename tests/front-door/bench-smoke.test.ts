/**
 * `npm run bench -- --quick` as a smoke test, no timing assertions: the harness starts its own
 * PostgreSQL, runs scenarios, and writes valid JSON and Markdown. CI runs two quick scenarios to
 * keep the suite short; `npm run bench -- --quick` runs them all (about two minutes).
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

test("bench --quick completes and writes valid JSON", async () => {
  const root = join(import.meta.dir, "..", "..");
  const results = join(root, "bench", "results");
  const before = Date.now();
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.BENCH_DATABASE_URL; // its own server, as `npm run bench` on a fresh machine
  const child = Bun.spawn([process.execPath, join(root, "bench", "run.ts"), "--quick", "--only", "ceiling,overhead"], {
    cwd: root,
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, err] = await Promise.all([child.exited, new Response(child.stderr).text()]);
  expect({ code, err: code === 0 ? "" : err.slice(-2000) }).toEqual({ code: 0, err: "" });
  const written = readdirSync(results)
    .filter((file) => file.startsWith("run-bun-") && file.endsWith(".json"))
    .map((file) => join(results, file))
    .filter((path) => statSync(path).mtimeMs >= before);
  expect(written.length).toBe(1);
  const run = JSON.parse(readFileSync(written[0]!, "utf8"));
  expect(run.environment.quick).toBe(true);
  expect(run.results.map((r: { name: string }) => r.name)).toEqual(["ceiling", "overhead"]);
  for (const result of run.results) {
    expect(result.error).toBeUndefined();
    expect(result.report.tables.length).toBeGreaterThan(0);
    for (const table of result.report.tables) {
      expect(table.rows.length).toBeGreaterThan(0);
      for (const row of table.rows) expect(row.length).toBe(table.columns.length);
    }
  }
  expect(readFileSync(join(results, "latest-bun.md"), "utf8")).toContain("## Overhead");
}, 240_000);
