/**
 * Bundles examples/worker/worker.ts for workerd the way wrangler would: postgres.js's `workerd`
 * export (cloudflare:sockets), OpenTelemetry's browser platform, Node built-ins left to
 * nodejs_compat.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const BUILTINS = /^(node:)?(http|https|url|events|stream|buffer|crypto|net|tls|os|util|process|fs|child_process|perf_hooks|zlib|string_decoder|async_hooks)$/;

export interface WorkerConfig {
  main: string;
  compatibility_date: string;
  compatibility_flags: string[];
  vars: Record<string, string>;
}

/** examples/worker/wrangler.jsonc without its comments. */
export function readWranglerConfig(): WorkerConfig {
  const text = readFileSync(`${root}examples/worker/wrangler.jsonc`, "utf8");
  return JSON.parse(text.replace(/^\s*\/\/.*$/gm, "")) as WorkerConfig;
}

/** The worker as one ES module. */
export async function bundleWorker(config: WorkerConfig = readWranglerConfig()): Promise<string> {
  const out = await Bun.build({
    entrypoints: [`${root}examples/worker/${config.main}`],
    target: "browser",
    conditions: ["workerd", "worker"],
    format: "esm",
    plugins: [{
      name: "pgpilot-worker",
      setup(build) {
        build.onResolve({ filter: BUILTINS }, (args) => ({
          path: args.path.startsWith("node:") ? args.path : `node:${args.path}`,
          external: true,
        }));
      },
    }],
    external: ["cloudflare:sockets"],
  });
  if (!out.success) throw new AggregateError(out.logs, "bundling the worker failed");
  let code = await out.outputs[0]!.text();
  // CommonJS dependencies (the OTel Prometheus exporter) require() built-ins; an ES module on
  // workerd has no require(): import them instead, as wrangler's nodejs_compat bundling does.
  const required = new Set([...code.matchAll(/__require\("([a-z_]+)"\)/g)].map((match) => match[1]!));
  for (const name of required) {
    code = `import * as __node_${name} from "node:${name}";\n${code.replaceAll(`__require("${name}")`, `__node_${name}`)}`;
  }
  return code;
}
