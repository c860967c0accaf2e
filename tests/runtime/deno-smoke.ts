// Deno smoke test: imports mod.ts directly; postgres comes from node_modules.
import postgres from "postgres";
import { pilot } from "../../mod.ts";
import { runChecks } from "./checks.mjs";

const url = Deno.env.get("DATABASE_URL");
if (!url) throw new Error("DATABASE_URL is not set");
const passed = await runChecks({ pilot, postgres, url, runtime: `deno-${Deno.version.deno}` });
console.log(`deno smoke: ${passed.length} checks passed (${passed.join(", ")})`);
