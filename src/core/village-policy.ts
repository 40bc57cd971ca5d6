/**
 * A village's policy (spec section 7). The policy object is stored and hashed as it is (it may
 * carry fields this table does not name); `readPolicy` gives the typed view decisions use.
 */
import { z } from "zod";
import { canonicalize, canonicalizeAscii, JsonFloat, SHA256_HEX_RE, sha256Hex, type JsonValue } from "./canonical.ts";
import { LinksError } from "./errors.ts";
import { quorumReachable } from "./quorum.ts";
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
export const RIGHTS = ["pull", "push", "manage"] as const;
export type Right = (typeof RIGHTS)[number];

export const DEFAULT_CAPABILITIES = {
  observer: { can_pull: true, can_push: false, can_manage: false },
  member: { can_pull: true, can_push: true, can_manage: false },
  admin: { can_pull: true, can_push: true, can_manage: true },
};

const zKeyHashes = z.array(z.string().regex(SHA256_HEX_RE, "expected a 64-hex key hash"));

/** The village policy table (spec section 7): what a plain policy must name. */
const POLICY_TABLE = {
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
};

/**
 * Python Links v0.15's signer-quorum models, taken as they are: a value this node cannot use
 * makes the quorum unreachable (core/quorum.ts), it does not make the village unreadable.
 */
const QUORUM_MODEL_FIELDS = {
  policy_quorum: z.unknown().optional(),
  policy_signer_weights: z.unknown().optional(),
  policy_signer_roles: z.unknown().optional(),
};

export const VillagePolicySchema = z.object({ ...POLICY_TABLE, ...QUORUM_MODEL_FIELDS });

export type VillagePolicy = z.output<typeof VillagePolicySchema>;
export type PolicyObject = { [key: string]: JsonValue };

/** The top-level fields of the table above. */
export const POLICY_FIELDS: readonly string[] = Object.keys(POLICY_TABLE);

/**
 * Fields Python Links v0.15 adds to a policy: carried and kept. Of these only the quorum models
 * (`policy_quorum`, `policy_signer_weights`, `policy_signer_roles`) are enforced here.
 */
export const V015_POLICY_FIELDS: readonly string[] = [
  "policy_quorum",
  "policy_signer_roles",
  "policy_signer_weights",
  "policy_update_expires_minutes",
  "public_policy_endpoint",
  "quarantine_external_bundles",
  "quarantine_review_min_approvals",
  "rate_limit_strategy",
  "require_manifest_signature",
  "require_quorum_metadata",
  "require_trusted_manifest_signer",
  "submission_quota_per_day",
  "trusted_manifest_signer_allowlist",
];

const KNOWN_FIELDS = new Set([...POLICY_FIELDS, ...V015_POLICY_FIELDS]);

/**
 * A plain policy given by an operator (not inside a signed artifact): every field must be ours
 * or Python v0.15's, so a typo such as `max_windw_days` is refused instead of stored while the
 * real field silently keeps its old value. Returns the policy object as given.
 */
export function readPlainPolicy(raw: unknown, what = "policy"): PolicyObject {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw) || raw instanceof JsonFloat) {
    throw new LinksError("invalid_schema", `invalid ${what}: expected a JSON object`);
  }
  const unknown = Object.keys(raw).filter((k) => !KNOWN_FIELDS.has(k));
  if (unknown.length > 0) {
    const names = unknown.slice(0, 5).map((k) => JSON.stringify(k.length > 64 ? `${k.slice(0, 64)}...` : k));
    const more = unknown.length > 5 ? ` (and ${unknown.length - 5} more)` : "";
    throw new LinksError(
      "invalid_schema",
      `invalid ${what}: unknown field(s) ${names.join(", ")}${more}; a policy may hold only the fields of the village policy table and Python Links v0.15's`,
    );
  }
  readPolicy(raw);
  return raw as PolicyObject;
}

/** The fields of the table that a policy object leaves out. */
export function missingPolicyFields(policy: PolicyObject): string[] {
  return POLICY_FIELDS.filter((k) => !Object.hasOwn(policy, k));
}

/**
 * Whether a village only takes signed, quorum-approved updates. An allowlist of policy signers
 * counts as asking for signatures: otherwise a plain policy could replace the allowlist and
 * side-step the quorum it exists for.
 */
export function requiresSignedUpdates(policy: VillagePolicy): boolean {
  return policy.require_policy_signature || policy.policy_signer_allowlist.length > 0;
}

/**
 * Why a policy, once in force, would leave the village with no way out: no update the village
 * could ever take over HTTP or from a pull (signed policy whose quorum the signers it lists could
 * never meet, all of them signing), no role left to manage it, or every request refused (a rate
 * limit of 0). Null when there is none. A village.json that already holds such a policy still
 * loads; this is checked on every policy a change would put in force, signed or plain.
 */
export function lockoutReason(policy: VillagePolicy): string | null {
  const quorum = requiresSignedUpdates(policy) ? quorumReachable(policy) : null;
  if (quorum !== null && !quorum.met) {
    const signers = new Set(policy.policy_signer_allowlist).size;
    if (quorum.model !== "m_of_n") return `its ${quorum.model} signer quorum could never be met by the signers it lists (${quorum.detail})`;
    return signers === 0
      ? "it requires signed policy updates but lists no policy signer: no update could ever be applied"
      : `its signer threshold of ${quorum.required} is above the ${signers} distinct signer(s) listed: no update could ever meet it`;
  }
  if (!ROLES.some((role) => roleMay(policy, role, "manage"))) {
    return `no role (${ROLES.join(", ")}) has can_manage: nobody could change the policy or review the quarantine over HTTP`;
  }
  if (policy.rate_limit_per_min < 1) return "a rate_limit_per_min of 0 refuses every request of every member, the admins' included";
  return null;
}

/**
 * The largest policy a village takes, as canonical JSON: room for thousands of keys and
 * predicates, while every entry of its published chain (the policy inside an artifact) still
 * fits in another node's default request body of 1 MiB.
 */
export const MAX_POLICY_BYTES = 256 * 1024;

/** Throws policy_too_large when the policy's canonical JSON is over MAX_POLICY_BYTES. */
export function assertPolicySize(policy: JsonValue, what = "the policy"): void {
  const size = Buffer.byteLength(canonicalize(policy));
  if (size > MAX_POLICY_BYTES) {
    throw new LinksError("policy_too_large", `${what} is ${size} bytes as canonical JSON, over the limit of ${MAX_POLICY_BYTES}`);
  }
}

/** Throws policy_lockout when `policy` would lock its village out (see lockoutReason). */
export function assertNoLockout(policy: VillagePolicy, what = "the policy"): void {
  const reason = lockoutReason(policy);
  if (reason !== null) throw new LinksError("policy_lockout", `${what} would lock the village out: ${reason}`);
}

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
