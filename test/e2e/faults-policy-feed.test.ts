/**
 * A relay in front of a real node replays, reorders, truncates, forks, re-signs and garbles the
 * policy feed: `links policy pull --apply` refuses each one and the puller is unchanged.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "./harness.ts";
import { runPolicyFeedAttacks, type PolicyFeedResult } from "../faults/scenarios/policy-feed.ts";

let tmp: TempDir;
let r: PolicyFeedResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-feed-");
  r = await runPolicyFeedAttacks({ dir: tmp.path, pullTimeoutMs: 10_000 });
}, 180_000);
afterAll(() => tmp.remove());

describe("when a relay tampers with the policy feed", () => {
  test("an honest relay is the control: the pull applies the whole chain", () => {
    expect(r.honest).toEqual({ exit: 0, status: "applied", updates: 3, headMatches: true });
  });
  test("every attack is refused with its code, exit 1, and the puller's village is unchanged", () => {
    expect(r.outcomes.length).toBeGreaterThan(15);
    expect(r.outcomes.filter((o) => !o.ok).map((o) => `${o.name}: ${o.why}`)).toEqual([]);
  });
});
