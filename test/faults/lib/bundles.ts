/**
 * Signed claim bundles for the fault tests, many and fast: the wire format comes from src/core
 * (canonical JSON, content address), the signature from the runtime's native Ed25519, so a
 * crash round or a fuzz run can sign thousands of bundles without slowing the node it drives.
 */
import { createPrivateKey, sign as nativeSign, type KeyObject } from "node:crypto";
import { computeBundleId, normalizeBundle, signedBytes, type Bundle } from "../../../src/core/bundle.ts";
import { JsonFloat, parseJson, sha256Hex, toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export interface SigningKey {
  seed: Uint8Array;
  publicKeyB64: string;
  keyHash: string;
  key: KeyObject;
}

export function signingKey(seed: Uint8Array = generateSeed()): SigningKey {
  const pub = publicKeyFromSeed(seed);
  return {
    seed,
    publicKeyB64: Buffer.from(pub).toString("base64"),
    keyHash: sha256Hex(pub),
    key: createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" }),
  };
}

export interface BundleSpec {
  issuer?: string;
  predicate?: string;
  subject?: string;
  windowDays?: number;
  claims?: number;
}

let serial = 0;

/** A signed bundle, different on every call; `tag` goes into the subject so logs can tell them apart. */
export function makeBundle(k: SigningKey, tag: string, spec: BundleSpec = {}): Bundle {
  const n = ++serial;
  const issuer = spec.issuer ?? "fault-issuer";
  const windowDays = spec.windowDays ?? 7;
  const createdAt = new Date(Date.UTC(2024, 4, 1, 12) + n * 1000).toISOString().replace(".000Z", "Z");
  const draft = normalizeBundle({
    bundle_id: "",
    issuer,
    created_at: createdAt,
    window_days: windowDays,
    claims: Array.from({ length: spec.claims ?? 1 }, (_, i) => ({
      issuer,
      subject: spec.subject ?? `fault:${tag}:${n}`,
      predicate: spec.predicate ?? "links.weighted_to",
      object: `object:${i}`,
      value: new JsonFloat(Math.log1p(n + i) || 1.5),
      window_days: windowDays,
      computed_at: createdAt,
      derivation: "log(1 + count_30d)",
      evidence: [],
    })),
  });
  const unsigned: Bundle = { ...draft, signature_alg: "Ed25519", public_key: k.publicKeyB64, signature: null };
  const withId: Bundle = { ...unsigned, bundle_id: computeBundleId(unsigned) };
  const signature = nativeSign(null, signedBytes(withId), k.key);
  return { ...withId, signature: signature.toString("base64") };
}

/** The wire text of a bundle (lossless: floats stay floats). */
export function bundleText(b: Bundle): string {
  return toJsonText(b as unknown as JsonValue);
}

/**
 * Signs whatever bundle-shaped JSON text it gets (after the schema fills defaults), so fuzzed
 * content (odd subjects, values, dates) arrives with a valid signature and goes deep; null when
 * the value does not pass the bundle schema (it is then sent unsigned, as it is).
 */
export function resign(text: string, k: SigningKey): Bundle | null {
  let draft: Bundle;
  try {
    draft = normalizeBundle(parseJson(text));
  } catch {
    return null;
  }
  const unsigned: Bundle = { ...draft, signature_alg: "Ed25519", public_key: k.publicKeyB64, signature: null };
  const withId: Bundle = { ...unsigned, bundle_id: computeBundleId(unsigned) };
  return { ...withId, signature: nativeSign(null, signedBytes(withId), k.key).toString("base64") };
}
