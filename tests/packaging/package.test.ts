/** Packaging invariants: entry points agree, the core stays runtime-agnostic, versions agree. */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../../lib/shared/version.ts";

const root = join(import.meta.dir, "..", "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe("package", () => {
  test("package.json and deno.json export the same entry points, to the same sources", () => {
    const npmEntries = Object.fromEntries(
      Object.entries(pkg.exports as Record<string, { bun: string }>).map(([key, value]) => [key, value.bun]),
    );
    expect(npmEntries).toEqual(deno.exports);
  });

  test("every compiled entry point matches its source path", () => {
    for (const [key, value] of Object.entries(pkg.exports as Record<string, Record<string, string>>)) {
      const source = value.bun!.replace(/^\.\//, "").replace(/\.ts$/, "");
      expect(value.default).toBe(`./dist/${source}.js`);
      expect(value.types).toBe(`./dist/${source}.d.ts`);
      expect(key === "." ? "mod" : key.replace(/^\.\//, "lib/")).toBe(source);
    }
  });

  test("versions agree: package.json, deno.json, lib/shared/version.ts", () => {
    expect(deno.version).toBe(pkg.version);
    expect(VERSION).toBe(pkg.version);
  });

  test("no node: imports in the runtime-agnostic core (only the Prometheus subpath)", () => {
    const offenders = filesUnder(join(root, "lib"))
      .filter((file) => file.endsWith(".ts") && !file.endsWith("prometheus.ts"))
      .filter((file) => /from\s+["']node:|require\(["']node:|import\(["']node:/.test(readFileSync(file, "utf8")));
    expect(offenders).toEqual([]);
  });

  test("no bare Node built-ins either (fs, net, os … without the node: prefix)", () => {
    const builtins = /from\s+["'](fs|net|os|path|crypto|child_process|http|https|stream|tls|dns|url|util|events|buffer|perf_hooks)(\/[^"']*)?["']/;
    const offenders = filesUnder(join(root, "lib"))
      .filter((file) => file.endsWith(".ts") && !file.endsWith("prometheus.ts"))
      .filter((file) => builtins.test(readFileSync(file, "utf8")));
    expect(offenders).toEqual([]);
  });
});
