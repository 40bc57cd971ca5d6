/**
 * A village's policy (spec section 7). The policy object is stored and hashed as it is (it may
 * carry fields this table does not name); `readPolicy` gives the typed view decisions use.
 */
import { z } from "zod";
import { canonicalizeAscii, JsonFloat, SHA256_HEX_RE, sha256Hex, type JsonValue } from "./canonical.ts";
import { parseWith } from "./schema.ts";

/** Stored policies may hold 30.0 where 30 is meant: read integral floats as ints. */
const zCount = z
  .custom<number | JsonFloat>((v) => (typeof v === "number" || v instanceof JsonFloat), { error: "expected an integer" })
  .transform((v, ctx) => {
    const n = v instanceof JsonFloat ? v.value : v;
    if (!Number.isSafeInteger(n) || n < 0) {
      ctx.addIssue({ code: "custom", message: "expected a non-negative integer" });
      return z.NEVER;
    }
    return n;
  });

const CapabilitySchema = z.object({
  can_pull: z.boolean().default(false),
  can_push: z.boolean().default(false),
  can_manage: z.boolean().default(false),
});

export const ROLES = ["admin", "member", "observer"] as const;
export type Role = (typeof ROLES)[number];
export type Right = "pull" | "push" | "manage";

export const DEFAULT_CAPABILITIES = {
  observer: { can_pull: true, can_push: false, can_manage: false },
  member: { can_pull: true, can_push: true, can_manage: false },
  admin: { can_pull: true, can_push: true, can_manage: true },
};

const zKeyHashes = z.array(z.string().regex(SHA256_HEX_RE, "expected a 64-hex key hash"));

export const VillagePolicySchema = z.object({
  visibility: z.enum(["private", "village", "public"]).default("village"),
  allowed_predicates: z.array(z.string()).default(["links.weighted_to"]),
  max_window_days: zCount.default(30),
  min_signature_alg: z.string().default("Ed25519"),
  allow_unverified: z.boolean().default(false),
  retention_days: zCount.default(90),
  rate_limit_per_min: zCount.default(60),
  issuer_allowlist: zKeyHashes.default([]),
  issuer_blocklist: zKeyHashes.default([]),
  issuer_id_allowlist: z.array(z.string()).default([]),
  issuer_id_blocklist: z.array(z.string()).default([]),
  require_issuer_allowlist: z.boolean().default(false),
  require_policy_signature: z.boolean().default(false),
  policy_signer_allowlist: zKeyHashes.default([]),
  policy_signature_threshold_m: zCount.default(1),
  capabilities: z.record(z.string(), CapabilitySchema).default(DEFAULT_CAPABILITIES),
});

export type VillagePolicy = z.output<typeof VillagePolicySchema>;
export type PolicyObject = { [key: string]: JsonValue };

/** Reads a policy object through the schema; a bad field is an invalid_schema error naming it. */
export function readPolicy(policy: unknown): VillagePolicy {
  return parseWith(VillagePolicySchema, policy, "policy");
}

/** The full default policy, every field written out (as Python Links writes a new village). */
export function defaultPolicy(overrides: Partial<VillagePolicy> = {}): PolicyObject {
  return { ...readPolicy({}), ...overrides } as unknown as PolicyObject;
}

export function roleMay(policy: VillagePolicy, role: string, right: Right): boolean {
  const caps = Object.hasOwn(policy.capabilities, role) ? policy.capabilities[role] : undefined;
  if (!caps) return false;
  return right === "pull" ? caps.can_pull : right === "push" ? caps.can_push : caps.can_manage;
}

/** The audit log's short policy hash: Python's ensure_ascii serialization, first 16 hex. */
export function auditPolicyHash(policy: JsonValue): string {
  return sha256Hex(canonicalizeAscii(policy)).slice(0, 16);
}

export function isKeyHash(value: string): boolean {
  return SHA256_HEX_RE.test(value);
}
