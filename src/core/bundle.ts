/**
 * Claim bundles (spec section 3): schema, content address, signing and verification.
 */
import { z } from "zod";
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { assertMaxDepth, canonicalize, parseJson, sha256Hex } from "./canonical.ts";
import { publicKeyFromSeed, sign, verify } from "./ed25519.ts";
import { LinksError, type ErrorCode } from "./errors.ts";
import { parseWith, zDatetime, zInt, zJson } from "./schema.ts";

export const ClaimSchema = z.object({
  issuer: z.string(),
  subject: z.string(),
  predicate: z.string(),
  object: z.string().nullable().default(null),
  value: zJson.default(null),
  window_days: zInt,
  computed_at: zDatetime,
  derivation: z.string().nullable().default(null),
  evidence: z.array(z.string()).default([]),
});

export const BundleSchema = z.object({
  bundle_id: z.string(),
  issuer: z.string(),
  created_at: zDatetime,
  window_days: zInt,
  claims: z.array(ClaimSchema),
  signature_alg: z.string().default("Ed25519"),
  public_key: z.string().nullable().default(null),
  signature: z.string().nullable().default(null),
});

export type Claim = z.output<typeof ClaimSchema>;
export type Bundle = z.output<typeof BundleSchema>;
export type BundleInput = z.input<typeof BundleSchema>;

export const BUNDLE_ID_RE = /^[0-9a-f]{32}$/;

/** Reads any JSON value through the bundle schema: unknown fields dropped, defaults filled. */
export function normalizeBundle(raw: unknown): Bundle {
  // A bundle read from a page or a log line (parsed with a looser bound) must still fit what
  // the inbox would accept, so that storing it never makes a file too deep to read back.
  assertMaxDepth(raw, "bundle");
  return parseWith(BundleSchema, raw, "bundle");
}

/** Parses bundle text or bytes losslessly and normalizes it. */
export function parseBundle(input: string | Uint8Array): Bundle {
  return normalizeBundle(parseJson(input));
}

/**
 * The canonical payload (the bundle without public_key and signature) with the given bundle_id.
 * "bundle_id" is the first key in code-point order, so the rest is canonicalized once and the id
 * is put in front of it.
 */
function payloadWithId(bundle: Bundle): (bundleId: string) => string {
  const { bundle_id: _id, public_key: _pk, signature: _sig, ...rest } = bundle;
  const tail = canonicalize(rest).slice(1); // drop the opening brace
  return (bundleId) => `{"bundle_id":${canonicalize(bundleId)},${tail}`;
}

export function computeBundleId(bundle: Bundle): string {
  return sha256Hex(payloadWithId(bundle)("")).slice(0, 32);
}

/** The exact bytes a bundle's signature covers. */
export function signedBytes(bundle: Bundle): Uint8Array {
  return new TextEncoder().encode(payloadWithId(bundle)(bundle.bundle_id));
}

export function issuerKeyHash(publicKey: Uint8Array): string {
  return sha256Hex(publicKey);
}

/** Fills bundle_id, public_key and signature; any earlier signature is replaced. */
export function signBundle(bundle: Bundle, seed: Uint8Array): Bundle {
  // signature_alg is part of the payload: sign what is returned, not what came in.
  const payload = payloadWithId({ ...bundle, signature_alg: "Ed25519" });
  const bundleId = sha256Hex(payload("")).slice(0, 32);
  const message = new TextEncoder().encode(payload(bundleId));
  return {
    ...bundle,
    bundle_id: bundleId,
    signature_alg: "Ed25519",
    public_key: encodeBase64(publicKeyFromSeed(seed)),
    signature: encodeBase64(sign(message, seed)),
  };
}

export interface BundleVerification {
  valid: boolean;
  bundle_id: string;
  expected_bundle_id: string;
  issuer_key_hash: string | null;
  code: ErrorCode | null;
  detail: string | null;
}

export function verifyBundle(bundle: Bundle): BundleVerification {
  return verifyWithText(bundle).verification;
}

/**
 * Verifies, and for a valid bundle also gives its canonical JSON text (what is stored), made
 * from the payload text the signature check already built.
 */
export function verifyWithText(bundle: Bundle): { verification: BundleVerification; text: string | null } {
  let payloadText: string | null = null;
  const verification = check(bundle, (t) => (payloadText = t));
  return { verification, text: verification.valid && payloadText !== null ? withSignature(payloadText, bundle) : null };
}

/**
 * The full bundle's canonical text from its payload's: "public_key" and "signature" sort just
 * before the top-level "signature_alg", the payload's last key but "window_days" (an int), so
 * the last `,"signature_alg":` in the text is that key (inside strings quotes are escaped).
 */
function withSignature(payloadText: string, bundle: Bundle): string {
  const at = payloadText.lastIndexOf(',"signature_alg":');
  return `${payloadText.slice(0, at)},"public_key":${canonicalize(bundle.public_key)},"signature":${canonicalize(bundle.signature)}${payloadText.slice(at)}`;
}

function check(bundle: Bundle, onPayload: (text: string) => void): BundleVerification {
  const payload = payloadWithId(bundle);
  const expected = sha256Hex(payload("")).slice(0, 32);
  const publicKey = bundle.public_key === null ? null : decodeBase64(bundle.public_key);
  const keyHash = publicKey && publicKey.length === 32 ? issuerKeyHash(publicKey) : null;
  const result = (code: ErrorCode | null, detail: string | null): BundleVerification => ({
    valid: code === null,
    bundle_id: bundle.bundle_id,
    expected_bundle_id: expected,
    issuer_key_hash: keyHash,
    code,
    detail,
  });

  if (bundle.bundle_id !== expected) {
    return result("bundle_id_mismatch", `bundle_id ${JSON.stringify(bundle.bundle_id.slice(0, 64))} does not match the content (expected ${expected})`);
  }
  if (bundle.public_key === null || bundle.signature === null) {
    return result("unsigned_bundle", "bundle is not signed (public_key and signature are required)");
  }
  if (bundle.signature_alg !== "Ed25519") {
    return result("invalid_signature", `signature_alg ${JSON.stringify(bundle.signature_alg)} is not supported (only Ed25519)`);
  }
  if (publicKey === null || publicKey.length !== 32) {
    return result("invalid_public_key", "public_key must be standard base64 of 32 bytes");
  }
  const signature = decodeBase64(bundle.signature);
  if (signature === null || signature.length !== 64) {
    return result("invalid_signature", "signature must be standard base64 of 64 bytes");
  }
  const payloadText = payload(expected);
  if (!verify(signature, new TextEncoder().encode(payloadText), publicKey)) {
    return result("invalid_signature", "signature does not verify against public_key");
  }
  onPayload(payloadText);
  return result(null, null);
}

declare const verified: unique symbol;
/** A bundle whose id and signature were checked; only these may be stored. */
export type VerifiedBundle = Bundle & { readonly [verified]: true };

/** Verifies and brands a bundle, or throws the verification failure as a LinksError. */
export function requireVerified(bundle: Bundle): VerifiedBundle {
  const v = verifyBundle(bundle);
  if (!v.valid) throw new LinksError(v.code ?? "invalid_signature", v.detail ?? "bundle does not verify");
  return bundle as VerifiedBundle;
}
