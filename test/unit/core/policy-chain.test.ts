/**
 * Reading another node's chain: the run by lineage (a Python Links v0.15 array), and the time
 * stamps a published chain carries.
 */
import { describe, expect, test } from "bun:test";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { compareDatetimes, laterOf, publishStamps, stampAfter } from "../../../src/core/chain-time.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { runByLineage } from "../../../src/core/policy-chain.ts";
import { addPolicySignature, newPolicyUpdate, policyHash, type PolicyUpdate } from "../../../src/core/policy-update.ts";

const seed = generateSeed();
expect(sha256Hex(publicKeyFromSeed(seed))).toMatch(/^[0-9a-f]{64}$/);

const policies = [0, 1, 2, 3, 4].map((i) => ({ max_window_days: 10 + i }));
const H: string[] = policies.map((p) => policyHash(p));
const h = (i: number): string => H[i] as string;

function entry(i: number, previous: number | null, opts: { at?: string; signed?: boolean } = {}): PolicyUpdate {
  const u = newPolicyUpdate({
    villageId: "commons",
    policy: policies[i] as { max_window_days: number },
    previousPolicyHash: previous === null ? null : h(previous),
    createdAt: opts.at ?? `2029-0${i + 1}-01T00:00:00Z`,
  });
  return opts.signed === false ? u : addPolicySignature(u, seed);
}

const hashes = (run: PolicyUpdate[] | null) => run?.map((u) => u.policy_hash) ?? null;

describe("the run from our head to theirs, by lineage", () => {
  const base = entry(0, null, { signed: false });
  const u1 = entry(1, 0);
  const u2 = entry(2, 1);
  const u3 = entry(3, 2);

  test("follows previous_policy_hash back from their head to ours, oldest first", () => {
    expect(hashes(runByLineage([base, u1, u2, u3], h(3), h(0)))).toEqual([h(1), h(2), h(3)]);
    expect(hashes(runByLineage([base, u1, u2, u3], h(3), h(2)))).toEqual([h(3)]);
  });

  test("does not depend on the order of the array", () => {
    expect(hashes(runByLineage([u3, base, u2, u1], h(3), h(0)))).toEqual([h(1), h(2), h(3)]);
  });

  test("works on a since-filtered array that no longer holds our head's own entry", () => {
    expect(hashes(runByLineage([u1, u2, u3], h(3), h(0)))).toEqual([h(1), h(2), h(3)]);
  });

  test("a missing middle entry is no path", () => {
    expect(runByLineage([base, u1, u3], h(3), h(0))).toBeNull();
  });

  test("a head that is not in the array is no path", () => {
    expect(runByLineage([base, u1, u2], h(3), h(0))).toBeNull();
  });

  test("a chain that never passes through our head ends at its unsigned base: no path", () => {
    expect(runByLineage([base, u1, u2, u3], h(3), h(4))).toBeNull();
  });

  test("a signed entry without lineage starts a run of its own (the rules decide it on time and memory)", () => {
    const free = entry(4, null);
    const after = entry(3, 4, { at: "2029-09-01T00:00:00Z" });
    expect(hashes(runByLineage([base, u1, free, after], h(3), h(1)))).toEqual([h(4), h(3)]);
  });

  test("a cycle of previous hashes ends the walk", () => {
    const a = entry(1, 2);
    const b = entry(2, 1);
    expect(runByLineage([a, b], h(2), h(0))).toBeNull();
  });

  test("content that recurs (A -> B -> A) is walked through its newest entries", () => {
    const back = entry(0, 1, { at: "2029-05-01T00:00:00Z" }); // back to base's content after u1
    const again = entry(1, 0, { at: "2029-06-01T00:00:00Z" });
    const run = runByLineage([base, u1, back, again], h(1), h(0));
    expect(run).toEqual([again]);
  });
});

describe("time along a published chain", () => {
  test("datetimes compare by instant, whatever their spelling", () => {
    expect(compareDatetimes("2029-01-01T00:00:00Z", "2029-01-01T01:00:00+01:00")).toBe(0);
    expect(compareDatetimes("2029-01-01T00:00:00Z", "2029-01-01T00:00:00.5Z")).toBe(-1);
    expect(compareDatetimes("2029-01-01T00:00:00.000001Z", "2029-01-01T00:00:00Z")).toBe(1);
    expect(compareDatetimes("0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z")).toBe(-1);
  });

  test("laterOf keeps the later instant, and the earlier text when both name the same one", () => {
    expect(laterOf(null, "2029-01-01T00:00:00Z")).toBe("2029-01-01T00:00:00Z");
    expect(laterOf("2029-01-01T00:00:00Z", "2029-01-01T00:00:00.000001Z")).toBe("2029-01-01T00:00:00.000001Z");
    expect(laterOf("2029-01-02T00:00:00Z", "2029-01-01T00:00:00Z")).toBe("2029-01-02T00:00:00Z");
    expect(laterOf("2029-01-01T01:00:00+01:00", "2029-01-01T00:00:00Z")).toBe("2029-01-01T01:00:00+01:00");
  });

  test("stampAfter keeps a later stamp and moves an earlier or equal one a microsecond after", () => {
    expect(stampAfter(null, "2029-01-01T00:00:00Z")).toBe("2029-01-01T00:00:00Z");
    expect(stampAfter("2029-01-01T00:00:00Z", "2029-01-02T00:00:00Z")).toBe("2029-01-02T00:00:00Z");
    expect(stampAfter("2029-01-01T00:00:00Z", "2029-01-01T00:00:00Z")).toBe("2029-01-01T00:00:00.000001Z");
    expect(stampAfter("2029-01-01T00:00:00.999999Z", "2028-01-01T00:00:00Z")).toBe("2029-01-01T00:00:01Z");
    expect(stampAfter("1969-12-31T23:59:59.999999Z", "1960-01-01T00:00:00Z")).toBe("1970-01-01T00:00:00Z");
  });

  const u = (createdAt: string) => ({ createdAt, fixed: false });
  const s = (createdAt: string) => ({ createdAt, fixed: true });

  test("signed entries keep their time; unsigned ones never go back", () => {
    expect(publishStamps([u("2029-01-03T00:00:00Z"), u("2029-01-02T00:00:00Z"), s("2029-01-05T00:00:00Z")])).toEqual([
      "2029-01-03T00:00:00Z",
      "2029-01-03T00:00:00.000001Z",
      "2029-01-05T00:00:00Z",
    ]);
  });

  test("unsigned entries stamped after a signed artifact that was made earlier move before it", () => {
    // a base applied locally after a signer exported the next update
    expect(publishStamps([u("2029-01-01T00:00:00Z"), u("2029-01-10T00:00:00Z"), u("2029-01-11T00:00:00Z"), s("2029-01-05T00:00:00Z")])).toEqual([
      "2029-01-01T00:00:00Z",
      "2029-01-04T23:59:59.999998Z",
      "2029-01-04T23:59:59.999999Z",
      "2029-01-05T00:00:00Z",
    ]);
  });

  test("the entries after the last signed one are stamped as stampAfter stamps them one by one", () => {
    const entries = [s("2029-01-05T00:00:00Z"), u("2029-01-04T00:00:00Z"), u("2029-01-06T00:00:00Z"), u("2029-01-06T00:00:00Z")];
    const stamps = publishStamps(entries);
    let previous: string | null = null;
    entries.forEach((e, i) => {
      previous = e.fixed ? e.createdAt : stampAfter(previous, e.createdAt);
      expect(stamps[i]).toBe(previous);
    });
  });

  test("a published chain's times never go backwards while its signed artifacts are in order", () => {
    const entries = [u("2029-03-01T00:00:00Z"), s("2029-01-01T00:00:00Z"), u("2028-01-01T00:00:00Z"), u("2029-05-01T00:00:00Z"), s("2029-04-01T00:00:00Z"), u("2029-04-01T00:00:00Z")];
    const stamps = publishStamps(entries);
    for (let i = 1; i < stamps.length; i++) expect(compareDatetimes(stamps[i] as string, stamps[i - 1] as string)).toBe(1);
  });

  test("an empty chain has no stamps", () => {
    expect(publishStamps([])).toEqual([]);
  });
});
