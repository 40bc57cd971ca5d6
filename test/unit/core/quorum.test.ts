import { describe, expect, test } from "bun:test";
import { JsonFloat } from "../../../src/core/canonical.ts";
import { quorumUnder, updateQuorum } from "../../../src/core/quorum.ts";
import { lockoutReason, readPolicy } from "../../../src/core/village-policy.ts";

const key = (c: string) => c.repeat(64);
const [A, B, C, D] = [key("a"), key("b"), key("c"), key("d")];
const signed = (extra: Record<string, unknown>) => readPolicy({ require_policy_signature: true, ...extra });
const met = (policy: ReturnType<typeof readPolicy>, signers: string[]) => quorumUnder(policy, signers).met;

describe("m_of_n (no policy_quorum, or model m_of_n)", () => {
  test("distinct allowlisted signers against policy_signature_threshold_m", () => {
    const p = signed({ policy_signer_allowlist: [A, B, C], policy_signature_threshold_m: 2 });
    expect(met(p, [A])).toBe(false);
    expect(met(p, [A, A])).toBe(false);
    expect(met(p, [A, D])).toBe(false);
    expect(met(p, [A, B])).toBe(true);
    expect(quorumUnder(p, [A]).detail).toBe("1 of 2 required allowlisted signer(s)");
  });
  test("policy_quorum.threshold_m counts when it asks for more, never for less", () => {
    const more = signed({ policy_signer_allowlist: [A, B, C], policy_signature_threshold_m: 1, policy_quorum: { model: "m_of_n", threshold_m: 3 } });
    expect(met(more, [A, B])).toBe(false);
    expect(met(more, [A, B, C])).toBe(true);
    const less = signed({ policy_signer_allowlist: [A, B, C], policy_signature_threshold_m: 2, policy_quorum: { threshold_m: 1 } });
    expect(met(less, [A])).toBe(false);
  });
  test("an empty allowlist is met by nobody", () => {
    expect(met(signed({}), [A])).toBe(false);
  });
});

describe("weighted", () => {
  const weighted = (extra: Record<string, unknown> = {}) =>
    signed({ policy_quorum: { model: "weighted", threshold_weight: 2 }, policy_signer_weights: { [A]: 1, [B]: new JsonFloat(1.5), [C]: -5 }, ...extra });
  test("the distinct signers' weights add up to the threshold; negative weights count as none", () => {
    const p = weighted({ policy_signer_allowlist: [A, B, C] });
    expect(met(p, [A])).toBe(false);
    expect(met(p, [A, A, A])).toBe(false);
    expect(met(p, [B, C])).toBe(false);
    expect(met(p, [A, B])).toBe(true);
    expect(quorumUnder(p, [A, C]).detail).toBe("signers' weight 1 of 2 required");
  });
  test("an allowlist limits who counts; without one, the weighed keys count", () => {
    expect(met(weighted({ policy_signer_allowlist: [A, D] }), [A, B])).toBe(false);
    expect(met(weighted(), [A, B])).toBe(true);
    expect(met(weighted(), [D])).toBe(false);
  });
  test("a threshold weight of 0, missing or not a number is met by nobody (v0.15 refuses it too)", () => {
    for (const threshold_weight of [0, undefined, "2", -1]) {
      const p = signed({ policy_quorum: { model: "weighted", threshold_weight }, policy_signer_weights: { [A]: 5 } });
      expect(met(p, [A])).toBe(false);
    }
  });
});

describe("role_based", () => {
  const roles = { [A]: ["core"], [B]: ["core", "external"], [C]: ["external"] };
  const byRole = (role_requirements: unknown, extra: Record<string, unknown> = {}) =>
    signed({ policy_quorum: { model: "role_based", role_requirements }, policy_signer_roles: roles, ...extra });
  const both = [{ role: "core", min_signers: 1 }, { role: "external", min_signers: 1 }];
  test("every role gets its signers; one key may fill two roles", () => {
    expect(met(byRole(both), [A])).toBe(false);
    expect(met(byRole(both), [A, C])).toBe(true);
    expect(met(byRole(both), [B])).toBe(true);
    expect(met(byRole([{ role: "core", min_signers: 2 }]), [A, C])).toBe(false);
    expect(quorumUnder(byRole(both), [A]).detail).toBe("signers by role: core 1 of 1, external 0 of 1");
  });
  test("no requirement, or a malformed one, is met by nobody (v0.15 takes no signature at all)", () => {
    for (const reqs of [[], [{ role: "core", min_signers: 0 }], [{ role: 5, min_signers: 1 }], "core", [{ role: "core" }]]) {
      expect(met(byRole(reqs), [A, B, C])).toBe(false);
    }
  });
  test("an allowlist limits who counts", () => {
    expect(met(byRole(both, { policy_signer_allowlist: [A] }), [A, C])).toBe(false);
  });
});

describe("rules this node cannot use", () => {
  test("an unknown model, or a policy_quorum that is not an object, is met by nobody and says why", () => {
    const unknown = signed({ policy_signer_allowlist: [A], policy_quorum: { model: "majority" } });
    expect(met(unknown, [A])).toBe(false);
    expect(quorumUnder(unknown, [A]).detail).toContain('"majority"');
    expect(met(signed({ policy_signer_allowlist: [A], policy_quorum: [1] }), [A])).toBe(false);
  });
  test("the village still reads: these fields are never a schema error", () => {
    expect(() => readPolicy({ policy_quorum: "x", policy_signer_weights: 7, policy_signer_roles: null })).not.toThrow();
  });
});

describe("an update that changes the quorum rules", () => {
  const current = signed({ policy_quorum: { model: "weighted", threshold_weight: 2 }, policy_signer_weights: { [A]: 1, [B]: 1, [C]: 1 } });
  test("must meet the rules it installs too: a new weight, threshold or model", () => {
    const heavier = signed({ policy_quorum: { model: "weighted", threshold_weight: 3 }, policy_signer_weights: { [A]: 1, [B]: 1, [C]: 1 } });
    expect(updateQuorum(current, heavier, [A, B])).toMatchObject({ met: false, policy: "new" });
    expect(updateQuorum(current, heavier, [A, B, C]).met).toBe(true);
    const reweighed = signed({ policy_quorum: { model: "weighted", threshold_weight: 2 }, policy_signer_weights: { [A]: 1, [B]: 1, [D]: 2 } });
    expect(updateQuorum(current, reweighed, [A, B])).toMatchObject({ met: true });
    expect(updateQuorum(current, reweighed, [D])).toMatchObject({ met: false, policy: "current" });
  });
  test("an update that keeps the rules is judged by the policy in force alone", () => {
    expect(updateQuorum(current, current, [A, B])).toMatchObject({ met: true, policy: "current", model: "weighted" });
  });
});

describe("lockout", () => {
  test("a model whose listed signers could never meet it locks the village out", () => {
    expect(lockoutReason(signed({ policy_quorum: { model: "weighted", threshold_weight: 5 }, policy_signer_weights: { [A]: 1, [B]: 1 } }))).toContain("weighted");
    expect(lockoutReason(signed({ policy_quorum: { model: "role_based", role_requirements: [{ role: "external", min_signers: 1 }] }, policy_signer_roles: { [A]: ["core"] } }))).toContain("role_based");
    expect(lockoutReason(signed({ policy_signer_allowlist: [A], policy_quorum: { model: "majority" } }))).toContain("majority");
  });
  test("one that they can meet does not", () => {
    expect(lockoutReason(signed({ policy_quorum: { model: "weighted", threshold_weight: 2 }, policy_signer_weights: { [A]: 1, [B]: 1 } }))).toBeNull();
  });
});
