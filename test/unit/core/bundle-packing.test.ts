import { describe, expect, test } from "bun:test";
import { computeBundleId, normalizeBundle, signBundle, verifyBundle, type Claim } from "../../../src/core/bundle.ts";
import { BundlePacker, signedBaseBytes, type BundleHeader } from "../../../src/core/bundle-packing.ts";
import { JsonFloat, toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { generateSeed } from "../../../src/core/ed25519.ts";

const header: BundleHeader = { issuer: "node-ä", created_at: "2024-05-01T12:00:00Z", window_days: 30 };
const seed = generateSeed();

function claim(i: number, subject = `wikipedia:en:User_${i}`): Claim {
  return {
    issuer: header.issuer,
    subject,
    predicate: "links.weighted_to",
    object: `wikipedia:en:Üser_${i * 7}`,
    value: new JsonFloat(Math.log1p(i)),
    window_days: 30,
    computed_at: header.created_at,
    derivation: "log(1 + count_30d)",
    evidence: [],
  };
}

/** The bytes of the file `links claims sign` writes for these claims. */
function signedFileBytes(claims: Claim[]): number {
  const draft = normalizeBundle({ bundle_id: "", ...header, claims, signature_alg: "Ed25519", public_key: null, signature: null });
  const signed = signBundle({ ...draft, bundle_id: computeBundleId(draft) }, seed);
  expect(verifyBundle(signed).valid).toBe(true);
  return Buffer.byteLength(`${toJsonText(signed as unknown as JsonValue)}\n`, "utf8");
}

function pack(claims: Claim[], maxBytes: number) {
  const packer = new BundlePacker(header, maxBytes);
  const bundles: { claims: Claim[]; bytes: number }[] = [];
  claims.forEach((c, i) => {
    const full = packer.add(c, i);
    if (full) bundles.push(full);
  });
  bundles.push(packer.finish());
  return bundles;
}

describe("when claims are packed under a size limit", () => {
  test("the size of an empty bundle is exactly that of its signed file", () => {
    expect(signedBaseBytes(header)).toBe(signedFileBytes([]));
  });

  test("each bundle's computed size is exactly its signed file's size, and at most the limit", () => {
    const claims = Array.from({ length: 60 }, (_, i) => claim(i));
    for (const limit of [1200, 2000, 4096, 10_000]) {
      const bundles = pack(claims, limit);
      for (const b of bundles) {
        expect(b.bytes).toBe(signedFileBytes(b.claims));
        expect(b.bytes).toBeLessThanOrEqual(limit);
      }
    }
  });

  test("every claim lands in exactly one bundle, in order", () => {
    const claims = Array.from({ length: 60 }, (_, i) => claim(i));
    const bundles = pack(claims, 2000);
    expect(bundles.length).toBeGreaterThan(5);
    expect(bundles.flatMap((b) => b.claims)).toEqual(claims);
  });

  test("a bundle is filled as far as the limit allows (the next claim would not have fitted)", () => {
    const claims = Array.from({ length: 60 }, (_, i) => claim(i));
    const bundles = pack(claims, 2000);
    bundles.slice(0, -1).forEach((b, i) => {
      const next = bundles[i + 1]?.claims[0] as Claim;
      expect(signedFileBytes([...b.claims, next])).toBeGreaterThan(2000);
    });
  });

  test("all claims in one bundle when they fit", () => {
    const claims = Array.from({ length: 5 }, (_, i) => claim(i));
    expect(pack(claims, 1 << 20).map((b) => b.claims.length)).toEqual([5]);
  });

  test("no claims give one empty bundle", () => {
    expect(pack([], 4096)).toEqual([{ claims: [], bytes: signedBaseBytes(header) }]);
  });
});

describe("when a limit cannot be met", () => {
  test("a limit below an empty signed bundle is a usage error", () => {
    expect(() => new BundlePacker(header, 100)).toThrow(/too small/);
  });

  test("a claim that alone is over the limit is refused, naming it", () => {
    const packer = new BundlePacker(header, 1000);
    expect(() => packer.add(claim(1, "x".repeat(2000)), 41)).toThrow(/claim 42 alone makes a signed bundle of \d+ bytes, over --max-bytes 1000/);
  });
});
