/**
 * `npm run demo` end to end: the demo with `--duration 5` starts its own PostgreSQL (and
 * replica), drives the load through the full stack, injects its outage, serves /metrics, exits
 * 0 with its summary, and leaves no server behind.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

test("the demo runs for 5 s and exits 0 with its summary", async () => {
  const root = join(import.meta.dir, "..", "..");
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.DATABASE_URL; // the demo's own embedded server, as on a fresh machine
  const child = Bun.spawn([process.execPath, join(root, "examples", "demo.ts"), "--duration", "5", "--port", "0"], {
    cwd: root,
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, out, err] = await Promise.all([child.exited, new Response(child.stdout).text(), new Response(child.stderr).text()]);
  expect({ code, err: code === 0 ? "" : err.slice(-2000) }).toEqual({ code: 0, err: "" });
  expect(out).toContain("metrics on http://127.0.0.1:");
  expect(out).toContain("summary");
  expect(out).toMatch(/operations: \d+ ok/);
  const ok = Number(/operations: (\d+) ok/.exec(out)?.[1]);
  expect(ok).toBeGreaterThan(0);
}, 120_000);
