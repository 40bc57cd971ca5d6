/**
 * The one decision on a policy-update artifact (wire-format section 4, rules 1-5), exercised
 * rule by rule, over every combination of the facts it depends on, and over runs.
 */
import { describe, expect, test } from "bun:test";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { LinksError } from "../../../src/core/errors.ts";
import {
  addPolicySignature,
  newPolicyUpdate,
  normalizePolicyUpdate,
  policyHash,
  policyPayloadHash,
  policyUpdateToJson,
  signPolicyUpdateLegacy,
  type PolicyUpdate,
} from "../../../src/core/policy-update.ts";
import { admitRun, admitUpdate, type ChainState } from "../../../src/core/policy-rules.ts";
import { defaultPolicy, type PolicyObject } from "../../../src/core/village-policy.ts";

interface Key {
  seed: Uint8Array;
  hash: string;
}
const key = (): Key => {
  const seed = generateSeed();
  return { seed, hash: sha256Hex(publicKeyFromSeed(seed)) };
};
const [k1, k2, k3] = [key(), key(), key()] as [Key, Key, Key];
const VID = "commons";
const NOW = Date.UTC(2030, 0, 1);

const signedPolicy = (extra: Record<string, unknown> = {}): PolicyObject =>
  defaultPolicy({ require_policy_signature: true, policy_signer_allowlist: [k1.hash, k2.hash], policy_signature_threshold_m: 1, ...extra });
const P0 = signedPolicy();
const P1 = signedPolicy({ max_window_days: 14 });
const P2 = signedPolicy({ max_window_days: 21 });
const H0 = policyHash(P0);
const H1 = policyHash(P1);

function update(policy: PolicyObject, o: { previous?: string | null; at?: string; village?: string; expires?: string | null } = {}, ...by: Key[]): PolicyUpdate {
  let u = newPolicyUpdate({ villageId: o.village ?? VID, policy, actor: "alice", previousPolicyHash: o.previous === undefined ? H0 : o.previous, createdAt: o.at ?? "2029-06-01T00:00:00Z" });
  if (o.expires !== undefined) u = { ...u, expires_at: o.expires } as PolicyUpdate;
  for (const k of by.length ? by : [k1]) u = addPolicySignature(u, k.seed);
  return u;
}

/** A v1 artifact (Links v0.7): the six v1 fields, no lineage. */
function v1(policy: PolicyObject, at: string, by: Key = k1): PolicyUpdate {
  const raw = { village_id: VID, created_at: at, actor: "alice", policy, policy_hash: policyHash(policy), signature_alg: "Ed25519" };
  const u = normalizePolicyUpdate(raw);
  expect(u.generation).toBe("v1");
  return signPolicyUpdateLegacy(u, by.seed);
}

function state(o: { head?: PolicyObject; newest?: string | null; payloads?: string[] } = {}): ChainState {
  const head = o.head ?? P0;
  const payloads = new Set(o.payloads ?? []);
  return { villageId: VID, headHash: policyHash(head), headPolicy: head, newestArtifactAt: o.newest === undefined ? "2029-01-01T00:00:00Z" : o.newest, hasPayload: (h) => payloads.has(h) };
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof LinksError) return e.code;
    throw e;
  }
  return "accepted";
}

const admit = (u: PolicyUpdate, s: ChainState, requireSigners = false) => refusal(() => admitUpdate(u, s, { now: NOW, requireSigners }));

describe("rule 1: the artifact itself", () => {
  test("a fresh update following the head, signed by an allowlisted key, is accepted with its signers and payload hash", () => {
    const u = update(P1);
    const a = admitUpdate(u, state(), { now: NOW });
    expect(a.signers).toEqual([k1.hash]);
    expect(a.payloadHash).toBe(policyPayloadHash(u));
  });

  test("a policy changed under the signature is policy_hash_mismatch", () => {
    expect(admit({ ...update(P1), policy: P2 } as PolicyUpdate, state())).toBe("policy_hash_mismatch");
  });

  test("no signature is policy_signature_required; a signature that does not verify is invalid_signature", () => {
    expect(admit({ ...update(P1), signatures: [] } as PolicyUpdate, state())).toBe("policy_signature_required");
    expect(admit({ ...update(P1), actor: "mallory" } as PolicyUpdate, state())).toBe("invalid_signature");
  });

  test("another village's update is village_mismatch", () => {
    expect(admit(update(P1, { village: "elsewhere" }), state())).toBe("village_mismatch");
  });

  test("an expired update is policy_expired", () => {
    expect(admit(update(P1, { expires: "2029-12-31T00:00:00Z" }), state())).toBe("policy_expired");
    expect(admit(update(P1, { expires: "2030-01-02T00:00:00Z" }), state())).toBe("accepted");
  });

  test("an update dated more than the clock skew allowance ahead is policy_future_dated, in every village", () => {
    expect(admit(update(P1, { at: "2030-01-01T00:10:00Z" }), state())).toBe("accepted");
    expect(admit(update(P1, { at: "2030-01-01T00:10:00.001Z" }), state())).toBe("policy_future_dated");
    expect(admit(update(P1, { at: "2099-01-01T00:00:00Z" }), state())).toBe("policy_future_dated");
    const open = defaultPolicy({ max_window_days: 5 });
    expect(admit(update(open, { at: "2099-01-01T00:00:00Z", previous: null }), state({ head: defaultPolicy() }))).toBe("policy_future_dated");
    expect(admit(update(open, { at: "2029-01-01T00:00:00Z", previous: null }), state({ head: defaultPolicy() }))).toBe("accepted");
  });

  test("an update whose policy would lock the village out is policy_lockout, even with its quorum", () => {
    expect(admit(update(signedPolicy({ rate_limit_per_min: 0 }), {}, k1), state())).toBe("policy_lockout");
    expect(admit(update(signedPolicy({ capabilities: {} }), {}, k1), state())).toBe("policy_lockout");
  });
});

describe("rule 4: the same signed payload twice is a replay", () => {
  const u = update(P1);
  const inChain = state({ payloads: [policyPayloadHash(u)], newest: u.created_at });

  test("the artifact already in the chain is policy_replay", () => {
    expect(admit(u, inChain)).toBe("policy_replay");
  });

  test("with another signature added, or re-signed by another key, or with a top-level signature, it is still the same payload", () => {
    expect(admit(addPolicySignature(u, k2.seed), inChain)).toBe("policy_replay");
    expect(admit({ ...addPolicySignature({ ...u, signatures: [] } as PolicyUpdate, k2.seed) }, inChain)).toBe("policy_replay");
    expect(admit(signPolicyUpdateLegacy({ ...u, signatures: [] } as PolicyUpdate, k1.seed), inChain)).toBe("policy_replay");
  });

  test("A -> B -> A, then A->B again: lineage fits, the replay rule refuses it", () => {
    // the head is back at P0 (H0) and the update A->B (H0 -> H1) is in the chain
    expect(u.generation === "v2" && u.previous_policy_hash).toBe(H0);
    expect(admit(u, { ...inChain, newestArtifactAt: "2029-07-01T00:00:00Z" })).toBe("policy_replay");
  });

  test("an old update after a newer head is a replay, not a lineage error (the replay rule goes first)", () => {
    expect(admit(u, state({ head: P2, payloads: [policyPayloadHash(u)] }))).toBe("policy_replay");
  });

  test("a replay is refused in a village without signed policy too", () => {
    expect(admit(u, { ...inChain, headPolicy: defaultPolicy(), headHash: policyHash(defaultPolicy()) })).toBe("policy_replay");
  });
});

describe("rule 3: lineage, when present", () => {
  test("an update following another policy than the head is policy_lineage", () => {
    expect(admit(update(P2, { previous: H1 }), state())).toBe("policy_lineage");
  });

  test("v2 with previous_policy_hash null and v1 artifacts have no lineage: accepted when fresh", () => {
    expect(admit(update(P1, { previous: null }), state())).toBe("accepted");
    expect(admit(v1(P1, "2029-06-01T00:00:00Z"), state())).toBe("accepted");
  });
});

describe("rule 5: no rollback where signed policy is required", () => {
  test.each([
    ["older than the newest artifact", "2028-12-31T23:59:59.999999Z", "policy_rollback"],
    ["at the same instant", "2029-01-01T00:00:00Z", "policy_rollback"],
    ["at the same instant, written with an offset", "2029-01-01T01:00:00+01:00", "policy_rollback"],
    ["one microsecond later", "2029-01-01T00:00:00.000001Z", "accepted"],
  ])("created_at %s: %s", (_what, at, expected) => {
    expect(admit(update(P1, { at }), state())).toBe(expected);
  });

  test("an older created_at with fresh lineage is still a rollback", () => {
    expect(admit(update(P1, { previous: H0, at: "2020-01-01T00:00:00Z" }), state())).toBe("policy_rollback");
  });

  test("without lineage only time and the chain's memory decide: v1 and null-lineage artifacts", () => {
    expect(admit(v1(P1, "2020-01-01T00:00:00Z"), state())).toBe("policy_rollback");
    expect(admit(update(P1, { previous: null, at: "2020-01-01T00:00:00Z" }), state())).toBe("policy_rollback");
  });

  test("a chain with no artifact yet takes any time (plain changes carry none)", () => {
    expect(admit(update(P1, { at: "2000-01-01T00:00:00Z" }), state({ newest: null }))).toBe("accepted");
  });

  test("a village without signed policy does not order artifacts by time", () => {
    const open = defaultPolicy();
    expect(admit(update(P1, { previous: policyHash(open), at: "2020-01-01T00:00:00Z" }), state({ head: open }))).toBe("accepted");
  });
});

describe("rule 2: quorum", () => {
  test("a signer outside the allowlist does not count", () => {
    expect(admit(update(P1, {}, k3), state())).toBe("policy_quorum_not_met");
  });

  test("two distinct allowlisted signers where the threshold is 2", () => {
    const head = signedPolicy({ policy_signature_threshold_m: 2 });
    const next = signedPolicy({ policy_signature_threshold_m: 2, max_window_days: 9 });
    expect(admit(update(next, { previous: policyHash(head) }, k1), state({ head }))).toBe("policy_quorum_not_met");
    expect(admit(update(next, { previous: policyHash(head) }, k1, k2), state({ head }))).toBe("accepted");
  });

  test("a village without signed policy needs no quorum from an operator, but a pull always needs allowlisted signers", () => {
    const open = defaultPolicy();
    const u = update(P1, { previous: policyHash(open) }, k3);
    expect(admit(u, state({ head: open }))).toBe("accepted");
    expect(admit(u, state({ head: open }), true)).toBe("policy_signer_not_allowed");
  });
});

describe("every combination of chain memory, lineage and time", () => {
  // The rules written out once more as a table, in their order: replay, lineage, rollback.
  const oracle = (c: { inChain: boolean; lineage: string; time: string; signed: boolean }): string => {
    if (c.inChain) return "policy_replay";
    if (c.lineage === "other") return "policy_lineage";
    if (c.signed && (c.time === "older" || c.time === "equal")) return "policy_rollback";
    return "accepted";
  };
  const times = { older: "2028-06-01T00:00:00Z", equal: "2029-01-01T00:00:00Z", newer: "2029-06-01T00:00:00Z" } as const;
  for (const signed of [true, false]) {
    for (const inChain of [true, false]) {
      for (const lineage of ["head", "none", "other", "v1"] as const) {
        for (const time of ["older", "equal", "newer"] as const) {
          const c = { inChain, lineage, time, signed };
          test(`${signed ? "signed" : "open"} village, ${inChain ? "in the chain" : "new"}, lineage ${lineage}, ${time}: ${oracle(c)}`, () => {
            const head = signed ? P0 : defaultPolicy({ policy_signer_allowlist: [] });
            const headHash = policyHash(head);
            const u = lineage === "v1"
              ? v1(P1, times[time])
              : update(P1, { previous: lineage === "head" ? headHash : lineage === "none" ? null : H1, at: times[time] });
            const s = state({ head, payloads: inChain ? [policyPayloadHash(u)] : [] });
            expect(admit(u, s)).toBe(oracle(c));
          });
        }
      }
    }
  }
});

describe("a run of updates", () => {
  const u1 = update(P1, { previous: H0, at: "2029-02-01T00:00:00Z" });
  const u2 = update(P2, { previous: H1, at: "2029-03-01T00:00:00Z" });

  test("each update is decided against the chain the ones before it leave", () => {
    expect(admitRun([u1, u2], state(), { now: NOW }).map((a) => a.update.policy_hash)).toEqual([H1, policyHash(P2)]);
  });

  test("a run that repeats an entry is a replay at the repeat", () => {
    // u1, then back to P0's content, then u1 again: lineage fits each time
    const back = update(P0, { previous: H1, at: "2029-02-15T00:00:00Z" });
    expect(refusal(() => admitRun([u1, back, u1], state(), { now: NOW }))).toBe("policy_replay");
  });

  test("a run whose second update is older than its first is a rollback", () => {
    const older = update(P2, { previous: H1, at: "2029-01-15T00:00:00Z" });
    expect(refusal(() => admitRun([u1, older], state(), { now: NOW }))).toBe("policy_rollback");
  });

  test("two updates of a run at the same instant: the second is a rollback", () => {
    const same = update(P2, { previous: H1, at: u1.created_at });
    expect(refusal(() => admitRun([u1, same], state(), { now: NOW }))).toBe("policy_rollback");
  });

  test("a refusal names the update's place in the run", () => {
    const bad = update(P2, { previous: H0, at: "2029-03-01T00:00:00Z" });
    expect(() => admitRun([u1, bad], state(), { now: NOW })).toThrow(/update 2 of 2/);
  });

  test("the chain's memory outlives the run's start: an update already in the chain is a replay at any place", () => {
    expect(refusal(() => admitRun([u1, u2], state({ payloads: [policyPayloadHash(u2)] }), { now: NOW }))).toBe("policy_replay");
  });

  test("an empty run is accepted and decides nothing", () => {
    expect(admitRun([], state(), { now: NOW })).toEqual([]);
  });
});

describe("the payload hash", () => {
  test("is the sha256 of the canonical signed payload: signatures do not change it, any signed field does", () => {
    const u = update(P1);
    const json = policyUpdateToJson(u);
    expect(policyPayloadHash(normalizePolicyUpdate(json))).toBe(policyPayloadHash(u));
    expect(policyPayloadHash(addPolicySignature(u, k2.seed))).toBe(policyPayloadHash(u));
    expect(policyPayloadHash({ ...u, created_at: "2029-06-01T00:00:00.000001Z" } as PolicyUpdate)).not.toBe(policyPayloadHash(u));
  });
});
