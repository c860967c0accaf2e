// Node 20 smoke test: imports the built package by its name (package.json "exports").
import postgres from "postgres";
import { pilot } from "pgpilot";
import { runChecks } from "./checks.mjs";

const url = process.env.DATABASE_URL;
if (!url) throw new Error("DATABASE_URL is not set");
const passed = await runChecks({ pilot, postgres, url, runtime: `node-${process.versions.node}` });
console.log(`node smoke: ${passed.length} checks passed (${passed.join(", ")})`);
