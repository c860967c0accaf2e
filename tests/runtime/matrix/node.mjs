// The runtime matrix on Node 20: the built package by its name, a minimal runner over the case
// list. Ends with "N passed, N failed"; exit 1 when any failed.
import process from "node:process";
import * as pgpilot from "pgpilot";
import * as prometheus from "pgpilot/prometheus";
import { cases } from "./cases.mjs";

const url = process.env.DATABASE_URL;
if (!url) throw new Error("DATABASE_URL is not set");
const runtime = `node-${process.versions.node}`;
let passed = 0;
let failed = 0;
for (const c of cases) {
  const started = performance.now();
  try {
    await c.run({ pgpilot, prometheus, url, runtime });
    passed++;
    console.log(`ok   ${c.name} (${Math.round(performance.now() - started)} ms)`);
  } catch (error) {
    failed++;
    console.log(`FAIL ${c.name}\n     ${error?.stack ?? error}`);
  }
}
console.log(`${runtime}: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
