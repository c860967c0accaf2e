// The runtime matrix on Deno: `deno test -A tests/runtime/matrix/deno.ts`. pgpilot from mod.ts,
// postgres and OpenTelemetry as npm packages from node_modules.
import * as pgpilot from "../../../mod.ts";
import * as prometheus from "../../../lib/prometheus.ts";
import { cases } from "./cases.mjs";

const url = Deno.env.get("DATABASE_URL");
if (!url) throw new Error("DATABASE_URL is not set");
for (const c of cases) {
  Deno.test({
    name: c.name,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => c.run({ pgpilot, prometheus, url, runtime: `deno-${Deno.version.deno}` }),
  });
}
