/**
 * The published package works where users use it: `npm pack`, install the tarball into a fresh
 * project, then import it by name and query the real server from Node 20, Bun and Deno.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testUrl } from "../support/db.ts";

testUrl(); // fail early and clearly when no server is configured

const root = join(import.meta.dir, "..", "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
let project: string;

const script = `
import postgres from "postgres";
import { pilot, classify } from "pgpilot";
const seen = [];
const sql = pilot(postgres(process.env.DATABASE_URL, { max: 1 }), {
  interceptors: [{ name: "seen", intercept: (op, next) => (seen.push(op.command), next()) }],
});
const [{ n }] = await sql\`select \${41}::int + 1 as n\`;
const error = await sql\`select 1/0\`.catch((e) => e);
await sql.close({ timeout: 1 });
console.log(JSON.stringify({ n, seen, category: classify(error) }));
`;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), "pgpilot-fresh-"));
  execFileSync("npm", ["pack", "--silent", "--pack-destination", project], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  const tarball = readdirSync(project).find((file) => file.endsWith(".tgz"))!;
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "fresh", private: true, type: "module" }));
  execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--silent", `./${tarball}`, "postgres@3.4.9", "@opentelemetry/api@1.9.1"], {
    cwd: project,
    stdio: ["ignore", "ignore", "inherit"],
  });
  writeFileSync(join(project, "index.mjs"), script);
}, 180_000);

afterAll(() => rmSync(project, { recursive: true, force: true }));

const expected = { n: 42, seen: ["SELECT", "SELECT"], category: "client" };
const run = (command: string, args: string[]) =>
  JSON.parse(execFileSync(command, args, { cwd: project, env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" }, encoding: "utf8" }).trim().split("\n").at(-1)!);

describe("installed from the packed tarball", () => {
  test("Node 20 imports it by name", () => {
    expect(run("node", ["index.mjs"])).toEqual(expected);
  }, 60_000);

  test("Bun imports it by name", () => {
    expect(run(bin("bun"), ["index.mjs"])).toEqual(expected);
  }, 60_000);

  test("Deno imports it by name from node_modules", () => {
    expect(run(bin("deno"), ["run", "-A", "index.mjs"])).toEqual(expected);
  }, 60_000);
});
