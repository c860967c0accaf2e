// The runtime matrix on Bun, under bun:test (part of the main `bun test` run).
import { describe, test } from "bun:test";
import * as pgpilot from "../../../mod.ts";
import * as prometheus from "../../../lib/prometheus.ts";
import { testUrl } from "../../support/db.ts";
import { cases } from "./cases.mjs";

describe(`runtime matrix (bun ${Bun.version})`, () => {
  for (const c of cases) {
    test(c.name, () => c.run({ pgpilot, prometheus, url: testUrl(), runtime: `bun-${Bun.version}` }), 30_000);
  }
});
