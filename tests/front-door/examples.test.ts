/**
 * The example servers start, answer /users, /metrics and /health/database, and stop: Bun.serve
 * and Deno.serve (the Node one needs the built package; tests/runtime covers Node imports).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { testUrl } from "../support/db.ts";

const root = join(import.meta.dir, "../..");
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

/** Start an example with PORT=0 and wait for its "listening on URL" line. */
function start(command: string, args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, DATABASE_URL: testUrl(), PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = "";
    const seen = (chunk: Buffer) => {
      output += chunk.toString();
      const match = output.match(/listening on (http:\/\/\S+)/);
      if (match) resolve({ url: match[1]!.replace(/\/?$/, "/"), child });
    };
    child.stdout!.on("data", seen);
    child.stderr!.on("data", seen);
    child.once("exit", (code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
}

async function exercise(url: string): Promise<void> {
  const users = await fetch(new URL("users", url));
  expect(users.status).toBe(200);
  expect(Array.isArray(await users.json())).toBe(true);
  const metrics = await (await fetch(new URL("metrics", url))).text();
  expect(metrics).toMatch(/db_client_operation_duration_count\{[^}]*db_client_connection_pool_name="app"[^}]*\} 1/);
  const health = await fetch(new URL("health/database", url));
  expect(health.status).toBe(200);
  expect((await health.json()).status).toBe("healthy");
}

describe("example servers", () => {
  test("Bun.serve", async () => {
    const { url, child } = await start(process.execPath, ["examples/bun-server.ts"]);
    await exercise(url);
    child.kill("SIGTERM");
  }, 30_000);

  test("Deno.serve", async () => {
    const deno = join(root, "node_modules/.bin/deno");
    const { url, child } = await start(deno, [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      "examples/deno-server.ts",
    ]);
    await exercise(url);
    child.kill("SIGINT");
  }, 60_000);
});
