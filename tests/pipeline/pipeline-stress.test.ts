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

// Open (issue 12): with pg_terminate_backend of reserved connections mixed in, seed 134337814
// stalled the lane: the pipeline had lost all its connections (5 lost, 1 failed reservation)
// and 30 calls on the pool path went unanswered with no backend active, settling only by
// deadline. Terminates alone: all settle, but with ~10 s stalls.
test.todo("the same with pg_terminate_backend of reserved connections mixed in (seed 134337814 stalls)");
