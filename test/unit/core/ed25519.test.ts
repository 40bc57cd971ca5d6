/**
 * The differential test of spec section 5: the native verify (BoringSSL through node:crypto) and
 * the pure-JS verifyNoble must give libsodium's verdict, and the same one, on everything.
 */
import { describe, expect, test } from "bun:test";
import { createPublicKey, verify as rawNativeVerify } from "node:crypto";
import * as ed from "@noble/ed25519";
import { parseBundle, signedBytes } from "../../../src/core/bundle.ts";
import {
  generateSeed,
  passesStrictChecks,
  publicKeyFromSeed,
  sign,
  verify,
  verifyNoble,
} from "../../../src/core/ed25519.ts";
import { parsePolicyUpdate, policySignedBytes } from "../../../src/core/policy-update.ts";
import { hex, KEY, loadVectors, RAW_KEYS, SECOND_KEY, str, utf8 } from "./vectors.ts";

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const P = 2n ** 255n - 19n;

const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));
const fromB64 = (b: string): Uint8Array => new Uint8Array(Buffer.from(b, "base64"));
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

function leToBigint(bytes: Uint8Array): bigint {
  let x = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(bytes[i]!);
  return x;
}

function bigintToLe(x: bigint, length = 32): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

function sha512(...parts: Uint8Array[]): Uint8Array {
  const h = new Bun.CryptoHasher("sha512");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** Both verdicts; a throw from either is a failure of its own. */
function verdicts(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): { native: boolean; noble: boolean } {
  return { native: verify(sig, msg, pk), noble: verifyNoble(sig, msg, pk) };
}

/** What the runtime's Ed25519 says with no checks of ours in front (or "throws"). */
function runtimeVerdict(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean | "throws" {
  try {
    const key = createPublicKey({ key: Buffer.from(concat(fromHex("302a300506032b6570032100"), pk)), format: "der", type: "spki" });
    return rawNativeVerify(null, msg, key, sig);
  } catch {
    return "throws";
  }
}

/** A small seeded PRNG (xorshift32) so a failing random case can be replayed. */
function prng(seed: number): (n: number) => Uint8Array {
  let s = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      out[i] = s & 0xff;
    }
    return out;
  };
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

// A valid signature for the edge cases to start from.
const MSG = utf8("edge cases start from a valid signature");
const SIG = sign(MSG, KEY.seed);
const R_BYTES = SIG.subarray(0, 32);
const S_VALUE = leToBigint(SIG.subarray(32));
const withS = (s: bigint): Uint8Array => concat(R_BYTES, bigintToLe(s));

// The order-8 point behind libsodium's blocklist entry 26e8958f...
const ORDER_8 = ed.Point.fromBytes(fromHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"));
const SMALL_ORDER_POINTS = Array.from({ length: 8 }, (_, i) => (i === 0 ? ed.Point.ZERO : ORDER_8.multiply(BigInt(i), false)));
const clearSign = (b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(b);
  out[31]! &= 0x7f;
  return out;
};
const setSign = (b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(b);
  out[31]! |= 0x80;
  return out;
};
/** Every encoding of a small-order point: canonical (both sign bits) and y + p where that fits. */
const SMALL_ORDER_ENCODINGS: Uint8Array[] = (() => {
  const seen = new Map<string, Uint8Array>();
  for (const pt of SMALL_ORDER_POINTS) {
    const y = leToBigint(clearSign(pt.toBytes()));
    const ys = y + P < 2n ** 255n ? [y, y + P] : [y];
    for (const yy of ys) for (const enc of [bigintToLe(yy), setSign(bigintToLe(yy))]) seen.set(hex(enc), enc);
  }
  return [...seen.values()];
})();
const IDENTITY = fromHex("01" + "00".repeat(31));

describe("on the wire-format vectors", () => {
  const bundles = loadVectors("bundles");
  const tampered = loadVectors("tampered");
  const policies = loadVectors("policy_updates");

  test("every vector signature verifies natively and with noble", () => {
    const cases: [string, Uint8Array, Uint8Array, Uint8Array][] = [];
    for (const v of bundles) {
      cases.push([v.name, fromB64(str(v.meta, "expected_signature_b64")), utf8(str(v.meta, "signed_bytes_utf8")), fromB64(str(v.meta, "expected_public_key_b64"))]);
    }
    for (const v of policies) {
      const msg = policySignedBytes(parsePolicyUpdate(v.wire));
      for (const s of v.meta.expected_signatures as { public_key: string; signature: string }[]) {
        cases.push([v.name, fromB64(s.signature), msg, fromB64(s.public_key)]);
      }
    }
    expect(cases.length).toBeGreaterThan(0);
    for (const [name, sig, msg, pk] of cases) expect({ name, ...verdicts(sig, msg, pk) }).toEqual({ name, native: true, noble: true });
  });

  test("every tampered vector's signature fails both ways over the bytes it is checked against", () => {
    expect(tampered.length).toBeGreaterThan(0);
    for (const v of tampered) {
      const b = parseBundle(v.wire);
      const msg = utf8(str(v.meta, "bytes_verified_against_utf8"));
      expect(signedBytes(b)).toEqual(msg);
      expect({ name: v.name, ...verdicts(fromB64(b.signature!), msg, fromB64(b.public_key!)) }).toEqual({ name: v.name, native: false, noble: false });
    }
  });
});

describe("on 200 random key and message pairs", () => {
  const seed = Number(process.env.ED25519_TEST_SEED ?? Date.now() % 2 ** 31);
  const random = prng(seed);
  const pairs = Array.from({ length: 200 }, (_, i) => {
    const length = i === 0 ? 0 : i === 1 ? 1 << 20 : random(2)[0]! + (random(1)[0]! & 1 ? 256 : 0);
    return { key: random(32), msg: random(length) };
  });

  test(`valid signatures verify, and flipping any one bit breaks them, the same both ways (seed ${seed})`, () => {
    const mismatches: string[] = [];
    for (const [i, { key, msg }] of pairs.entries()) {
      const pk = publicKeyFromSeed(key);
      const sig = sign(msg, key);
      const bits = random(4);
      const sigBit = ((bits[0]! << 8) | bits[1]!) % 512;
      const msgBit = msg.length === 0 ? -1 : (((bits[2]! << 8) | bits[3]!) * 7919) % (msg.length * 8);
      const runs: [string, Uint8Array, Uint8Array, boolean][] = [
        ["valid", sig, msg, true],
        [`sig bit ${sigBit} flipped`, flipBit(sig, sigBit), msg, false],
      ];
      if (msgBit >= 0) runs.push([`message bit ${msgBit} flipped`, sig, flipBit(msg, msgBit), false]);
      else runs.push(["message extended by one byte", sig, new Uint8Array([0]), false]);
      for (const [what, s, m, want] of runs) {
        const got = verdicts(s, m, pk);
        if (got.native !== want || got.noble !== want) {
          mismatches.push(`pair ${i} (seed ${seed}, key ${hex(key)}, message length ${msg.length}): ${what}: native ${got.native}, noble ${got.noble}, expected ${want}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  });
});

describe("when S is not below the group order", () => {
  test("the unmodified edge-case signature is valid (control)", () => {
    expect(verdicts(SIG, MSG, KEY.publicKey)).toEqual({ native: true, noble: true });
  });

  for (const [what, s] of [
    ["S = L", L],
    ["S = L + 1", L + 1n],
    ["S + L (the same scalar, non-canonical)", S_VALUE + L],
    ["S + 2L", S_VALUE + 2n * L],
    ["S + 15L (the largest multiple that fits)", S_VALUE + 15n * L],
    ["S = 2^256 - 1", 2n ** 256n - 1n],
  ] as const) {
    test(`${what} is refused both ways`, () => {
      const sig = withS(s);
      expect(passesStrictChecks(sig, KEY.publicKey)).toBe(false);
      expect(verdicts(sig, MSG, KEY.publicKey)).toEqual({ native: false, noble: false });
    });
  }

  test("S with its top bit set is refused both ways", () => {
    const sig = new Uint8Array(SIG);
    sig[63]! |= 0x80;
    expect(verdicts(sig, MSG, KEY.publicKey)).toEqual({ native: false, noble: false });
  });

  test("our verify refuses S + L whatever the runtime's Ed25519 would say about it", () => {
    const sig = withS(S_VALUE + L);
    // The runtime may or may not accept a non-canonical S (BoringSSL refuses, old OpenSSL did not).
    expect([true, false, "throws"]).toContain(runtimeVerdict(sig, MSG, KEY.publicKey));
    expect(verify(sig, MSG, KEY.publicKey)).toBe(false);
  });
});

describe("when R is a small-order point", () => {
  for (const enc of SMALL_ORDER_ENCODINGS) {
    test(`R = ${hex(enc)} is refused both ways`, () => {
      const sig = concat(enc, SIG.subarray(32));
      expect(passesStrictChecks(sig, KEY.publicKey)).toBe(false);
      expect(verdicts(sig, MSG, KEY.publicKey)).toEqual({ native: false, noble: false });
      // with S = 0 too, the shape of a forgery against a small-order key
      expect(verdicts(concat(enc, new Uint8Array(32)), MSG, KEY.publicKey)).toEqual({ native: false, noble: false });
    });
  }
});

describe("when the public key is a small-order point", () => {
  test("the runtime's own Ed25519 accepts the identity key with R = identity and S = 0 for any message", () => {
    // This is why the strict checks run first (spec section 5).
    const forgery = concat(IDENTITY, new Uint8Array(32));
    const seen = [utf8("any message"), utf8("another one")].map((m) => runtimeVerdict(forgery, m, IDENTITY));
    expect(seen.every((v) => v === true || v === false || v === "throws")).toBe(true);
    expect(verdicts(forgery, utf8("any message"), IDENTITY)).toEqual({ native: false, noble: false });
  });

  for (const enc of SMALL_ORDER_ENCODINGS) {
    test(`public key ${hex(enc)} is refused both ways, with R = each small-order point and S = 0`, () => {
      expect(passesStrictChecks(SIG, enc)).toBe(false);
      expect(verdicts(SIG, MSG, enc)).toEqual({ native: false, noble: false });
      for (const r of [IDENTITY, ...SMALL_ORDER_ENCODINGS]) {
        for (const m of [MSG, new Uint8Array(0)]) {
          expect(verdicts(concat(r, new Uint8Array(32)), m, enc)).toEqual({ native: false, noble: false });
        }
      }
    });
  }
});

describe("the small-order blocklist is complete", () => {
  test("the point behind 26e8958f... has order exactly 8", () => {
    expect(ORDER_8.isSmallOrder()).toBe(true);
    expect(ORDER_8.multiply(8n, false).is0()).toBe(true);
    expect(ORDER_8.multiply(4n, false).is0()).toBe(false);
  });

  test("its 8 multiples are 8 distinct points, all of small order: the whole torsion subgroup", () => {
    const encodings = new Set(SMALL_ORDER_POINTS.map((p) => p.toHex()));
    expect(encodings.size).toBe(8);
    expect(SMALL_ORDER_POINTS.every((p) => p.isSmallOrder())).toBe(true);
  });

  test("each multiple, sign bit cleared or set, is refused as a public key and as R", () => {
    for (const pt of SMALL_ORDER_POINTS) {
      for (const enc of [clearSign(pt.toBytes()), setSign(pt.toBytes())]) {
        expect({ enc: hex(enc), asKey: passesStrictChecks(SIG, enc) }).toEqual({ enc: hex(enc), asKey: false });
        expect({ enc: hex(enc), asR: passesStrictChecks(concat(enc, SIG.subarray(32)), KEY.publicKey) }).toEqual({ enc: hex(enc), asR: false });
      }
    }
  });

  test("the non-canonical encodings y = p and y = p + 1 of small-order points are refused too", () => {
    for (const y of [P, P + 1n]) {
      for (const enc of [bigintToLe(y), setSign(bigintToLe(y))]) {
        expect(passesStrictChecks(SIG, enc)).toBe(false);
        expect(passesStrictChecks(concat(enc, SIG.subarray(32)), KEY.publicKey)).toBe(false);
      }
    }
  });

  test("an ordinary public key passes the strict checks (control)", () => {
    expect(passesStrictChecks(SIG, KEY.publicKey)).toBe(true);
    expect(passesStrictChecks(SIG, SECOND_KEY.publicKey)).toBe(true);
  });
});

describe("when the public key is a non-canonical encoding (y >= p)", () => {
  test("the runtime's own Ed25519 accepts y = p + 1 (the identity) with R = identity and S = 0", () => {
    const key = bigintToLe(P + 1n);
    const forgery = concat(IDENTITY, new Uint8Array(32));
    expect([true, false, "throws"]).toContain(runtimeVerdict(forgery, MSG, key));
    expect(verdicts(forgery, MSG, key)).toEqual({ native: false, noble: false });
  });

  for (let k = 0n; k < 19n; k++) {
    test(`y = p + ${k} is refused both ways, sign bit cleared or set`, () => {
      for (const key of [bigintToLe(P + k), setSign(bigintToLe(P + k))]) {
        expect(passesStrictChecks(SIG, key)).toBe(false);
        expect(verdicts(SIG, MSG, key)).toEqual({ native: false, noble: false });
        expect(verdicts(concat(IDENTITY, new Uint8Array(32)), MSG, key)).toEqual({ native: false, noble: false });
      }
    });
  }

  test("y = p - 1 is canonical (it is the order-2 point, refused for that reason)", () => {
    expect(passesStrictChecks(SIG, bigintToLe(P - 1n))).toBe(false);
    expect(SMALL_ORDER_ENCODINGS.map(hex)).toContain(hex(bigintToLe(P - 1n)));
  });
});

describe("when a point has a small-order component (mixed order)", () => {
  // libsodium and the native verify check [S]B - [k]A == R as encodings (cofactorless); noble's
  // ed.verify checks the cofactored equation, which also accepts these. verifyNoble must not.
  const ext = ed.utils.getExtendedPublicKey(SECOND_KEY.seed);
  const a = ext.scalar;
  const A = ext.point;

  test("R plus an order-8 point: a cofactored verifier accepts, libsodium and both of ours refuse", () => {
    const r = 0x1234567890abcdefn;
    const R = ed.Point.BASE.multiply(r).add(ORDER_8).toBytes();
    const k = leToBigint(sha512(R, A.toBytes(), MSG)) % L;
    const sig = concat(R, bigintToLe((r + k * a) % L));
    expect(ed.verify(sig, MSG, A.toBytes(), { zip215: false })).toBe(true);
    expect(passesStrictChecks(sig, A.toBytes())).toBe(true);
    expect(verdicts(sig, MSG, A.toBytes())).toEqual({ native: false, noble: false });
  });

  test("a public key plus an order-8 point: both agree, refusing unless 8 divides k", () => {
    const mixed = A.add(ORDER_8).toBytes();
    const seen = new Set<boolean>();
    for (let i = 0; i < 48; i++) {
      const r = 1000n + BigInt(i);
      const R = ed.Point.BASE.multiply(r).toBytes();
      const msg = utf8(`mixed ${i}`);
      const k = leToBigint(sha512(R, mixed, msg)) % L;
      const sig = concat(R, bigintToLe((r + k * a) % L));
      const want = k % 8n === 0n;
      expect({ i, ...verdicts(sig, msg, mixed) }).toEqual({ i, native: want, noble: want });
      seen.add(want);
    }
    expect(seen.has(false)).toBe(true);
  });
});

describe("when the lengths are wrong", () => {
  const cases: [string, Uint8Array, Uint8Array][] = [
    ["a 31-byte key", SIG, KEY.publicKey.subarray(0, 31)],
    ["a 33-byte key", SIG, concat(KEY.publicKey, new Uint8Array(1))],
    ["an empty key", SIG, new Uint8Array(0)],
    ["a 63-byte signature", SIG.subarray(0, 63), KEY.publicKey],
    ["a 65-byte signature", concat(SIG, new Uint8Array(1)), KEY.publicKey],
    ["an empty signature", new Uint8Array(0), KEY.publicKey],
    ["a 64-byte key", SIG, concat(KEY.publicKey, KEY.publicKey)],
  ];
  for (const [what, sig, pk] of cases) {
    test(`${what} is false both ways, never a throw`, () => {
      expect(() => verify(sig, MSG, pk)).not.toThrow();
      expect(() => verifyNoble(sig, MSG, pk)).not.toThrow();
      expect(() => passesStrictChecks(sig, pk)).not.toThrow();
      expect(verdicts(sig, MSG, pk)).toEqual({ native: false, noble: false });
      expect(passesStrictChecks(sig, pk)).toBe(false);
    });
  }

  test("a key that is not on the curve is false both ways, never a throw", () => {
    // y = 2 has no x on edwards25519
    const offCurve = bigintToLe(2n);
    expect(() => ed.Point.fromBytes(offCurve)).toThrow();
    expect(verdicts(SIG, MSG, offCurve)).toEqual({ native: false, noble: false });
  });
});

describe("keys and signing", () => {
  test("publicKeyFromSeed gives key.json's public keys", () => {
    expect(hex(publicKeyFromSeed(KEY.seed))).toBe(RAW_KEYS.public_key_hex);
    expect(hex(publicKeyFromSeed(SECOND_KEY.seed))).toBe(RAW_KEYS.second_signer.public_key_hex);
    expect(hex(KEY.seed)).toBe(RAW_KEYS.seed_hex);
  });

  test("sign reproduces RFC 8032 section 7.1 TEST 1 and TEST 2", () => {
    expect(hex(sign(new Uint8Array(0), KEY.seed))).toBe(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
    expect(hex(sign(fromHex("72"), SECOND_KEY.seed))).toBe(
      "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    );
  });

  test("sign and verify round trip, and a signature does not verify under another key", () => {
    const seed = generateSeed();
    const msg = utf8("round trip");
    const sig = sign(msg, seed);
    expect(sig).toHaveLength(64);
    expect(verdicts(sig, msg, publicKeyFromSeed(seed))).toEqual({ native: true, noble: true });
    expect(verdicts(sig, msg, KEY.publicKey)).toEqual({ native: false, noble: false });
  });

  test("signing is deterministic", () => {
    expect(hex(sign(MSG, KEY.seed))).toBe(hex(SIG));
  });

  test("generateSeed gives 32 random bytes, distinct each time", () => {
    const seeds = Array.from({ length: 64 }, () => generateSeed());
    expect(seeds.every((s) => s instanceof Uint8Array && s.length === 32)).toBe(true);
    expect(new Set(seeds.map(hex)).size).toBe(64);
    expect(seeds.some((s) => s.every((b) => b === 0))).toBe(false);
    // 2048 random bytes use most byte values
    expect(new Set(seeds.flatMap((s) => [...s])).size).toBeGreaterThan(200);
  });
});
