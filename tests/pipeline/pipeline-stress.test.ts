/**
 * Issue 12, item 3: a seeded randomized stress run of pipelined calls (depth 16) with faults at
 * random moments (tests/support/pipeline-stress.ts). Prints its seed; PGPILOT_STRESS_SEED
 * replays it. The long run (every fault kind): `bun bench/pipeline-stress.ts`.
 */
import { expect, test } from "bun:test";
import { runStress } from "../support/pipeline-stress.ts";
import { testUrl } from "../support/db.ts";

test("10,000 pipelined calls under ALTER … TYPE flips, errors mid-pipeline, cancels, aborts and deadlines: every call settles with its own answer, no acknowledged insert is lost", async () => {
  const totals = await runStress({ url: testUrl(), calls: 10_000, faults: ["alter-read", "alter-write"], log: (line) => console.log(line) });
  expect(totals.calls).toBe(10_000);
  expect({ unsettled: totals.unsettled, swapped: totals.swapped, lost: totals.lost, examples: totals.examples })
    .toEqual({ unsettled: 0, swapped: 0, lost: 0, examples: [] });
}, 120_000);

// Open (issue 12): with pg_terminate_backend of reserved connections mixed in, every call settles
// with its own answer, but calls can still wait up to the 30 s deadline: postgres.js 3.4.9 leaves
// a connection that closed with a write buffered unable to send its startup message after the
// reconnect (stuck "connecting" until connect_timeout), and Bun 1.3.5 sometimes never reports the
// close of a terminated backend's socket (docs/adaptive.md, Known defect). pgpilot's own part —
// writes after a socket error, queries owed when postgres.js closes the connection — is fixed.
// The long run with terminates: `bun bench/pipeline-stress.ts --faults terminate --fault-every 100`.
test.todo("the same with pg_terminate_backend of reserved connections mixed in (stalls inside postgres.js 3.4.9 / Bun 1.3.5)");
