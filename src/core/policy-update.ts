/**
 * Signed policy-update artifacts (spec section 4): both generations, hashing, signing and
 * verification. Quorum and lineage are decided where a village applies an update, not here.
 */
import { z } from "zod";
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { assertMaxDepth, canonicalize, parseJson, SHA256_HEX_RE, sha256Hex, type JsonValue } from "./canonical.ts";
import { nowIso } from "./datetime.ts";
import { publicKeyFromSeed, sign, verify } from "./ed25519.ts";
import { LinksError, type ErrorCode } from "./errors.ts";
import { parseWith, zDatetime, zFloat, zInt, zJsonObject } from "./schema.ts";

const SignatureEntrySchema = z.object({
  public_key: z.string(),
  signature: z.string(),
  alg: z.string().default("ed25519"),
});

const QuorumSchema = z.object({
  model: z.string(),
  threshold_m: zInt.nullable().default(null),
  required_weight: zFloat.nullable().default(null),
  requirements: z.array(z.object({ role: z.string(), min_signers: zInt })).default([]),
});

const ChangeSummarySchema = z.object({
  added: z.array(z.string()).default([]),
  removed: z.array(z.string()).default([]),
  changed: z.array(z.string()).default([]),
});

const V1Fields = {
  village_id: z.string(),
  created_at: zDatetime,
  actor: z.string().nullable().default(null),
  policy: zJsonObject,
  policy_hash: z.string(),
  signature_alg: z.string().default("Ed25519"),
};

const Unsigned = {
  public_key: z.string().nullable().default(null),
  signature: z.string().nullable().default(null),
  signatures: z.array(SignatureEntrySchema).default([]),
};

const V2Fields = {
  ...V1Fields,
  expires_at: zDatetime.nullable().default(null),
  policy_version_id: z.string().nullable().default(null),
  lifecycle_state: z.string().default("proposal"),
  previous_policy_hash: z.string().nullable().default(null),
  rollback_to_policy_hash: z.string().nullable().default(null),
  activation_time: zDatetime.nullable().default(null),
  activation_height: zInt.nullable().default(null),
  quorum: QuorumSchema.nullable().default(null),
  change_summary: ChangeSummarySchema.nullable().default(null),
};

export const PolicyUpdateV1Schema = z.object({ ...V1Fields, ...Unsigned });
export const PolicyUpdateV2Schema = z.object({ ...V2Fields, ...Unsigned });

export type PolicyUpdateV1 = z.output<typeof PolicyUpdateV1Schema>;
export type PolicyUpdateV2 = z.output<typeof PolicyUpdateV2Schema>;
export type Generation = "v1" | "v2";
export type PolicyUpdate =
  | ({ generation: "v1" } & PolicyUpdateV1)
  | ({ generation: "v2" } & PolicyUpdateV2);
export type SignatureEntry = z.output<typeof SignatureEntrySchema>;

const V2_MARKERS = [
  "expires_at", "policy_version_id", "lifecycle_state", "previous_policy_hash",
  "rollback_to_policy_hash", "activation_time", "activation_height", "quorum", "quorum_metadata",
  "change_summary",
];

const UNSIGNED_FIELDS = new Set(["generation", "public_key", "signature", "signatures"]);

export function isPolicyUpdateArtifact(raw: unknown): boolean {
  return typeof raw === "object" && raw !== null && !Array.isArray(raw) && "policy" in raw && "policy_hash" in raw;
}

export function normalizePolicyUpdate(raw: unknown): PolicyUpdate {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new LinksError("invalid_schema", "invalid policy update: expected a JSON object");
  }
  assertMaxDepth(raw, "policy update");
  const fields = raw as Record<string, unknown>;
  if (!V2_MARKERS.some((k) => k in fields)) {
    return { generation: "v1", ...parseWith(PolicyUpdateV1Schema, fields, "policy update") };
  }
  const input = { ...fields };
  if ((input.quorum === undefined || input.quorum === null) && input.quorum_metadata != null) {
    input.quorum = input.quorum_metadata;
  }
  return { generation: "v2", ...parseWith(PolicyUpdateV2Schema, input, "policy update") };
}

export function parsePolicyUpdate(input: string | Uint8Array): PolicyUpdate {
  return normalizePolicyUpdate(parseJson(input));
}

/** sha256 of the canonical policy, 64 lowercase hex characters. */
export function policyHash(policy: JsonValue): string {
  return sha256Hex(canonicalize(policy));
}

/** The bytes every signature of the artifact covers. */
export function policySignedBytes(update: PolicyUpdate): Uint8Array {
  const payload: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(update)) {
    if (!UNSIGNED_FIELDS.has(key)) payload[key] = value;
  }
  return new TextEncoder().encode(canonicalize(payload as JsonValue));
}

/**
 * sha256 of the canonical signed payload: what makes two artifacts "the same update". Adding,
 * removing or replacing signatures does not change it.
 */
export function policyPayloadHash(update: PolicyUpdate): string {
  return sha256Hex(policySignedBytes(update));
}

/** The policy the artifact says it replaces (its lineage); v1 artifacts name none. */
export function previousPolicyHash(update: PolicyUpdate): string | null {
  return update.generation === "v2" ? update.previous_policy_hash : null;
}

/** Whether the artifact carries any signature at all (valid or not). */
export function hasSignatureMaterial(update: PolicyUpdate): boolean {
  return update.public_key !== null || update.signature !== null || update.signatures.length > 0;
}

/** The artifact as it is written to a file or sent: every field of its generation. */
export function policyUpdateToJson(update: PolicyUpdate): JsonValue {
  const { generation: _g, ...fields } = update;
  return fields as unknown as JsonValue;
}

export interface SignatureCheck {
  where: "top-level" | `signatures[${number}]`;
  key_hash: string | null;
  valid: boolean;
}

export interface PolicyVerification {
  valid: boolean;
  policy_hash: string;
  generation: Generation;
  /** distinct key hashes with a valid signature, in the order first seen */
  signers: string[];
  checks: SignatureCheck[];
  code: ErrorCode | null;
  detail: string | null;
}

export function verifyPolicyUpdate(update: PolicyUpdate): PolicyVerification {
  const computed = policyHash(update.policy);
  const message = policySignedBytes(update);
  const checks: SignatureCheck[] = [];
  if (update.public_key !== null || update.signature !== null) {
    checks.push(checkSignature("top-level", update.public_key, update.signature, update.signature_alg, message));
  }
  update.signatures.forEach((entry, i) => {
    checks.push(checkSignature(`signatures[${i}]`, entry.public_key, entry.signature, entry.alg, message));
  });
  const signers = [...new Set(checks.filter((c) => c.valid).map((c) => c.key_hash as string))];
  const result = (code: ErrorCode | null, detail: string | null): PolicyVerification => ({
    valid: code === null,
    policy_hash: computed,
    generation: update.generation,
    signers,
    checks,
    code,
    detail,
  });
  if (computed !== update.policy_hash) {
    return result("policy_hash_mismatch", `policy_hash does not match the policy (expected ${computed})`);
  }
  if (checks.length === 0) return result("policy_signature_required", "the policy update carries no signature");
  if (signers.length === 0) return result("invalid_signature", "no signature on the policy update verifies");
  return result(null, null);
}

function checkSignature(
  where: SignatureCheck["where"],
  publicKeyB64: string | null,
  signatureB64: string | null,
  alg: string,
  message: Uint8Array,
): SignatureCheck {
  const publicKey = publicKeyB64 === null ? null : decodeBase64(publicKeyB64);
  const signature = signatureB64 === null ? null : decodeBase64(signatureB64);
  const keyHash = publicKey && publicKey.length === 32 ? sha256Hex(publicKey) : null;
  const valid =
    alg.toLowerCase() === "ed25519" && publicKey !== null && signature !== null && verify(signature, message, publicKey);
  return { where, key_hash: keyHash, valid };
}

/** Signs with the single top-level signature (Python's sign_update_legacy). */
export function signPolicyUpdateLegacy(update: PolicyUpdate, seed: Uint8Array): PolicyUpdate {
  const toSign = { ...update, signature_alg: "Ed25519" } as PolicyUpdate;
  const signature = sign(policySignedBytes(toSign), seed);
  return { ...toSign, public_key: encodeBase64(publicKeyFromSeed(seed)), signature: encodeBase64(signature) };
}

/** Appends a signature to signatures[]; a key that already signed is signed afresh, not twice. */
export function addPolicySignature(update: PolicyUpdate, seed: Uint8Array): PolicyUpdate {
  const publicKey = encodeBase64(publicKeyFromSeed(seed));
  const entry: SignatureEntry = {
    public_key: publicKey,
    signature: encodeBase64(sign(policySignedBytes(update), seed)),
    alg: "ed25519",
  };
  const others = update.signatures.filter((s) => s.public_key !== publicKey);
  return { ...update, signatures: [...others, entry] };
}

/**
 * A fresh unsigned v2 artifact for a policy. Its `policy_version_id` is the policy hash, as
 * Python Links v0.15 writes it.
 */
export function newPolicyUpdate(args: {
  villageId: string;
  policy: { [key: string]: JsonValue };
  actor?: string | null;
  previousPolicyHash?: string | null;
  createdAt?: string;
}): PolicyUpdate {
  const hash = policyHash(args.policy);
  return normalizePolicyUpdate({
    village_id: args.villageId,
    created_at: args.createdAt ?? nowIso(),
    actor: args.actor ?? null,
    policy: args.policy,
    policy_hash: hash,
    policy_version_id: hash,
    lifecycle_state: "proposal",
    previous_policy_hash: args.previousPolicyHash ?? null,
  });
}

/**
 * The JSON of an unsigned v2 artifact for a policy change, every field written out: what
 * `policyUpdateToJson(newPolicyUpdate(...))` gives, built without a schema pass, for publishing
 * long chains. `createdAt` must already be a normalized datetime.
 */
export function unsignedUpdateJson(args: {
  villageId: string;
  policy: { [key: string]: JsonValue };
  policyHash: string;
  actor: string | null;
  previousPolicyHash: string | null;
  createdAt: string;
}): JsonValue {
  return {
    village_id: args.villageId,
    created_at: args.createdAt,
    actor: args.actor,
    policy: args.policy,
    policy_hash: args.policyHash,
    signature_alg: "Ed25519",
    expires_at: null,
    policy_version_id: args.policyHash,
    lifecycle_state: "proposal",
    previous_policy_hash: args.previousPolicyHash,
    rollback_to_policy_hash: null,
    activation_time: null,
    activation_height: null,
    quorum: null,
    change_summary: null,
    public_key: null,
    signature: null,
    signatures: [],
  };
}

/** A policy hash from outside (a path, a query, another node's answer): 64 lowercase hex. */
export function assertPolicyHash(value: unknown, what = "policy_hash"): string {
  if (typeof value === "string" && SHA256_HEX_RE.test(value)) return value;
  const shown = typeof value === "string" ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value) : `a ${value === null ? "null" : typeof value}`;
  throw new LinksError("invalid_argument", `${what} must be a policy hash (64 lowercase hex characters), got ${shown}`);
}
