/**
 * Claim bundles (spec section 3): schema, content address, signing and verification.
 */
import { z } from "zod";
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { assertMaxDepth, canonicalize, JsonFloat, parseJson, sha256Hex, type JsonValue } from "./canonical.ts";
import { parseCanonicalText } from "./canonical-fast.ts";
import { normalizeDatetime } from "./datetime.ts";
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

/**
 * The canonical text of bundles that arrived exactly canonical: verification and storage reuse it
 * instead of serializing the bundle again. Such bundles are frozen, so the text stays theirs.
 */
const canonicalTexts = new WeakMap<Bundle, string>();
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses bundle text or bytes losslessly and normalizes it. A body that is already the canonical
 * text of a normalized bundle (what `links claims sign` and Python Links write) takes the fast
 * path; anything else the general parser and schema, which also give every error.
 */
export function parseBundle(input: string | Uint8Array): Bundle {
  let text: string;
  try {
    text = typeof input === "string" ? input : utf8.decode(input);
  } catch {
    return normalizeBundle(parseJson(input)); // throws the precise UTF-8 error
  }
  const fast = parseCanonicalText(text);
  const bundle = fast === undefined ? null : asNormalizedBundle(fast);
  if (bundle === null) return normalizeBundle(parseJson(text));
  canonicalTexts.set(Object.freeze(bundle), text);
  return bundle;
}

const BUNDLE_KEYS = ["bundle_id", "claims", "created_at", "issuer", "public_key", "signature", "signature_alg", "window_days"];
const CLAIM_KEYS = ["computed_at", "derivation", "evidence", "issuer", "object", "predicate", "subject", "value", "window_days"];

function hasExactly(v: unknown, keys: string[]): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof JsonFloat) return false;
  const own = Object.keys(v);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(v, k));
}

const isInt = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v);
// The claims of a bundle usually share one computed_at: remember the last one that passed.
let lastNormalized = "";
const isNormalizedDatetime = (v: unknown): boolean => {
  if (typeof v !== "string") return false;
  if (v === lastNormalized) return true;
  if (normalizeDatetime(v) !== v) return false;
  lastNormalized = v;
  return true;
};
const isStringOrNull = (v: unknown): boolean => v === null || typeof v === "string";

/**
 * The value as a Bundle when it already is exactly what BundleSchema would make of it (every
 * field present, typed and normalized, nothing else), else null. Never more permissive than the
 * schema: the null answer sends the value through the schema.
 */
function asNormalizedBundle(v: JsonValue): Bundle | null {
  if (!hasExactly(v, BUNDLE_KEYS)) return null;
  if (typeof v.bundle_id !== "string" || typeof v.issuer !== "string" || typeof v.signature_alg !== "string") return null;
  if (!isNormalizedDatetime(v.created_at) || !isInt(v.window_days) || !isStringOrNull(v.public_key) || !isStringOrNull(v.signature)) return null;
  if (!Array.isArray(v.claims)) return null;
  for (const c of v.claims) {
    if (!hasExactly(c, CLAIM_KEYS)) return null;
    if (typeof c.issuer !== "string" || typeof c.subject !== "string" || typeof c.predicate !== "string") return null;
    if (!isStringOrNull(c.object) || !isStringOrNull(c.derivation) || !isInt(c.window_days) || !isNormalizedDatetime(c.computed_at)) return null;
    if (!Array.isArray(c.evidence) || !c.evidence.every((e) => typeof e === "string")) return null;
  }
  return v as unknown as Bundle;
}

/**
 * The canonical payload (the bundle without public_key and signature) with the given bundle_id.
 * "bundle_id" is the first key in code-point order, so the rest is canonicalized once and the id
 * is put in front of it.
 */
function payloadWithId(bundle: Bundle): (bundleId: string) => string {
  const text = canonicalTexts.get(bundle);
  const tail = text === undefined ? payloadTail(bundle) : payloadTailOf(text, bundle);
  return (bundleId) => `{"bundle_id":${canonicalize(bundleId)},${tail}`;
}

/** The payload's canonical text after `{"bundle_id":...,`. */
function payloadTail(bundle: Bundle): string {
  const { bundle_id: _id, public_key: _pk, signature: _sig, ...rest } = bundle;
  return canonicalize(rest).slice(1); // drop the opening brace
}

/**
 * The same, cut from the bundle's own canonical text: drop `,"public_key":...,"signature":...`
 * (see withSignature for why the last `,"public_key":` and `,"signature_alg":` are the top-level keys).
 */
function payloadTailOf(text: string, bundle: Bundle): string {
  const start = `{"bundle_id":${canonicalize(bundle.bundle_id)},`.length;
  return text.slice(start, text.lastIndexOf(',"public_key":')) + text.slice(text.lastIndexOf(',"signature_alg":'));
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

export interface VerifiedText {
  verification: BundleVerification;
  /** the bundle's canonical text (what is stored) when it verifies, else null */
  text: string | null;
}

/** Checks one Ed25519 signature: the runtime's native verify here, or a worker's (see the server). */
export type SignatureCheck = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;
export type AsyncSignatureCheck = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => Promise<boolean>;

/**
 * Verifies, and for a valid bundle also gives its canonical JSON text (what is stored), made
 * from the payload text the signature check already built.
 */
export function verifyWithText(bundle: Bundle): VerifiedText {
  const p = prepare(bundle);
  return "done" in p ? p.done : p.finish(verify(p.signature, p.message, p.publicKey));
}

/** The same, with the signature itself checked by `check` (e.g. off the event loop). */
export async function verifyWithTextAsync(bundle: Bundle, check: AsyncSignatureCheck): Promise<VerifiedText> {
  const p = prepare(bundle);
  return "done" in p ? p.done : p.finish(await check(p.signature, p.message, p.publicKey));
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

type Prepared =
  | { done: VerifiedText }
  | { signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array; finish(signatureValid: boolean): VerifiedText };

/** Every check but the signature's own: either the verdict, or what the signature check needs. */
function prepare(bundle: Bundle): Prepared {
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
  const refuse = (code: ErrorCode, detail: string): Prepared => ({ done: { verification: result(code, detail), text: null } });

  if (bundle.bundle_id !== expected) {
    return refuse("bundle_id_mismatch", `bundle_id ${JSON.stringify(bundle.bundle_id.slice(0, 64))} does not match the content (expected ${expected})`);
  }
  if (bundle.public_key === null || bundle.signature === null) {
    return refuse("unsigned_bundle", "bundle is not signed (public_key and signature are required)");
  }
  if (bundle.signature_alg !== "Ed25519") {
    return refuse("invalid_signature", `signature_alg ${JSON.stringify(bundle.signature_alg)} is not supported (only Ed25519)`);
  }
  if (publicKey === null || publicKey.length !== 32) {
    return refuse("invalid_public_key", "public_key must be standard base64 of 32 bytes");
  }
  const signature = decodeBase64(bundle.signature);
  if (signature === null || signature.length !== 64) {
    return refuse("invalid_signature", "signature must be standard base64 of 64 bytes");
  }
  const payloadText = payload(expected);
  return {
    signature,
    message: new TextEncoder().encode(payloadText),
    publicKey,
    finish: (signatureValid) =>
      signatureValid
        ? { verification: result(null, null), text: canonicalTexts.get(bundle) ?? withSignature(payloadText, bundle) }
        : { verification: result("invalid_signature", "signature does not verify against public_key"), text: null },
  };
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
