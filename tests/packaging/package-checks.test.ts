/**
 * Release checks on the real package: publint and are-the-types-wrong on the packed tarball,
 * and `deno publish --dry-run` for JSR (it runs offline).
 */
import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const run = (command: string, args: string[]) => {
  const result = spawnSync(command, args, { cwd: root, encoding: "utf8", env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" } });
  return { code: result.status, output: `${result.stdout}\n${result.stderr}` };
};

test("publint --strict reports no problems", () => {
  const { code, output } = run(bin("tsc"), ["-p", "tsconfig.build.json"]);
  expect({ code, output: code ? output : "" }).toEqual({ code: 0, output: "" });
  const lint = run(bin("publint"), ["--strict"]);
  expect({ code: lint.code, output: lint.code ? lint.output : "" }).toEqual({ code: 0, output: "" });
  expect(lint.output).not.toMatch(/Errors:|Warnings:/);
}, 120_000);

test("are-the-types-wrong: every entry point resolves for ESM and bundlers", () => {
  const { code, output } = run(bin("attw"), ["--pack", ".", "--profile", "esm-only", "--format", "json"]);
  expect({ code, output: code ? output.slice(-2000) : "" }).toEqual({ code: 0, output: "" });
}, 120_000);

test("deno publish --dry-run succeeds (deno.json is ready for JSR)", () => {
  const { code, output } = run(bin("deno"), ["publish", "--dry-run", "--allow-dirty"]);
  expect({ code, output: code ? output.slice(-2000) : "" }).toEqual({ code: 0, output: "" });
  expect(output).toContain("Dry run complete");
}, 120_000);
