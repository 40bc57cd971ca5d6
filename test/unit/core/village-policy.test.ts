/**
 * A plain policy from an operator may hold only the fields of the village policy table and
 * Python Links v0.15's (wire-format section 7).
 */
import { describe, expect, test } from "bun:test";
import { LinksError } from "../../../src/core/errors.ts";
import { defaultPolicy, lockoutReason, missingPolicyFields, POLICY_FIELDS, readPlainPolicy, requiresSignedUpdates, readPolicy, V015_POLICY_FIELDS } from "../../../src/core/village-policy.ts";

function refusal(raw: unknown): LinksError {
  try {
    readPlainPolicy(raw);
  } catch (e) {
    if (e instanceof LinksError) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}

describe("a plain policy", () => {
  test("with every field of ours and of Python v0.15 is taken as it is", () => {
    const v015 = Object.fromEntries(V015_POLICY_FIELDS.map((k) => [k, null]));
    const policy = { ...defaultPolicy(), ...v015 };
    expect(readPlainPolicy(policy)).toBe(policy);
    expect(POLICY_FIELDS).toHaveLength(16);
    expect(V015_POLICY_FIELDS).toHaveLength(13);
  });

  test("with a typo is refused as invalid_schema naming the field", () => {
    const e = refusal({ ...defaultPolicy(), max_windw_days: 7 });
    expect(e.code).toBe("invalid_schema");
    expect(e.detail).toContain('"max_windw_days"');
  });

  test("names at most five unknown fields and counts the rest", () => {
    const raw = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`extra_${i}`, i]));
    const e = refusal(raw);
    expect(e.detail).toContain('"extra_4"');
    expect(e.detail).not.toContain('"extra_5"');
    expect(e.detail).toContain("(and 3 more)");
  });

  test("that is not an object is invalid_schema", () => {
    for (const raw of [[], 5, "policy", null]) expect(refusal(raw).code).toBe("invalid_schema");
  });

  test("with a known field of the wrong type is refused naming it", () => {
    expect(refusal({ max_window_days: "thirty" }).detail).toContain("max_window_days");
  });

  test("may leave fields out; missingPolicyFields lists them in table order", () => {
    expect(missingPolicyFields({ max_window_days: 3, visibility: "public" })).toEqual(POLICY_FIELDS.filter((k) => k !== "max_window_days" && k !== "visibility"));
    expect(missingPolicyFields(defaultPolicy())).toEqual([]);
  });
});

test("a village asks for signed policy with require_policy_signature or with a signer allowlist", () => {
  expect(requiresSignedUpdates(readPolicy({}))).toBe(false);
  expect(requiresSignedUpdates(readPolicy({ require_policy_signature: true }))).toBe(true);
  expect(requiresSignedUpdates(readPolicy({ policy_signer_allowlist: ["a".repeat(64)] }))).toBe(true);
});

describe("a policy that would lock its village out", () => {
  const key = (c: string) => c.repeat(64);
  const reason = (p: Record<string, unknown>) => lockoutReason(readPolicy(p));
  test("the default policy, and signed policy with enough distinct signers, are fine", () => {
    expect(reason({})).toBeNull();
    expect(reason({ require_policy_signature: true, policy_signer_allowlist: [key("a"), key("b")], policy_signature_threshold_m: 2 })).toBeNull();
    expect(reason({ policy_signer_allowlist: [key("a")], policy_signature_threshold_m: 0 })).toBeNull();
    expect(reason({ capabilities: { observer: { can_manage: true } } })).toBeNull();
  });
  test.each([
    ["signed policy with no signer", { require_policy_signature: true }, "lists no policy signer"],
    ["a threshold above the signers", { policy_signer_allowlist: [key("a")], policy_signature_threshold_m: 2 }, "above the 1 distinct signer"],
    ["a signer listed twice to reach the threshold", { policy_signer_allowlist: [key("a"), key("a")], policy_signature_threshold_m: 2 }, "above the 1 distinct signer"],
    ["no role that may manage", { capabilities: { Admin: { can_manage: true } } }, "can_manage"],
    ["a rate limit of 0", { rate_limit_per_min: 0 }, "rate_limit_per_min"],
  ])("%s", (_what, policy, words) => {
    expect(reason(policy)).toContain(words);
  });
});
