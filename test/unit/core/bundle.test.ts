import { describe, expect, test } from "bun:test";
import {
  type Bundle,
  BUNDLE_ID_RE,
  computeBundleId,
  issuerKeyHash,
  normalizeBundle,
  parseBundle,
  requireVerified,
  signBundle,
  signedBytes,
  verifyBundle,
  verifyWithText,
} from "../../../src/core/bundle.ts";
import fc from "fast-check";
import { canonicalize, JsonFloat, parseJson, type JsonValue } from "../../../src/core/canonical.ts";
import { valueArbitrary } from "../../faults/scenarios/canonical.ts";
import { LinksError } from "../../../src/core/errors.ts";
import { hex, KEY, loadVectors, SECOND_KEY, sha256, str, text, utf8 } from "./vectors.ts";

const BUNDLES = loadVectors("bundles");
const TAMPERED = loadVectors("tampered");

/** Vector 01's wire text: a valid bundle every tampering test starts from. */
const BASIC = BUNDLES.find((v) => v.name.startsWith("01-"))!;
const BASIC_WIRE = str(BASIC.meta, "signed_bundle_wire");

/** Replaces exactly one occurrence, so a test never silently tampers with nothing. */
function replaceOnce(haystack: string, needle: string, replacement: string): string {
  const at = haystack.indexOf(needle);
  if (at < 0 || haystack.indexOf(needle, at + 1) >= 0) throw new Error(`${needle} must occur exactly once`);
  return haystack.slice(0, at) + replacement + haystack.slice(at + needle.length);
}

function schemaError(input: string | Uint8Array): LinksError {
  try {
    parseBundle(input);
  } catch (e) {
    if (e instanceof LinksError) return e;
    throw e;
  }
  throw new Error("expected parseBundle to refuse the input");
}

test("the vector folders are not empty", () => {
  expect(BUNDLES.length).toBeGreaterThan(0);
  expect(TAMPERED.length).toBeGreaterThan(0);
  expect(BASIC).toBeDefined();
});

describe("for every signed bundle vector", () => {
  for (const v of BUNDLES) {
    describe(v.name, () => {
      const wire = str(v.meta, "signed_bundle_wire");
      const bundle = parseBundle(wire);

      test("the vector expects a valid bundle", () => {
        expect(v.meta.expected_verify).toBe(true);
      });

      test("the recomputed bundle_id is expected_bundle_id", () => {
        expect(computeBundleId(bundle)).toBe(str(v.meta, "expected_bundle_id"));
        expect(bundle.bundle_id).toBe(str(v.meta, "expected_bundle_id"));
        expect(bundle.bundle_id).toMatch(BUNDLE_ID_RE);
      });

      test("the signed bytes are signed_bytes_utf8 exactly", () => {
        const bytes = signedBytes(bundle);
        expect(text(bytes)).toBe(str(v.meta, "signed_bytes_utf8"));
        expect(hex(bytes)).toBe(str(v.meta, "signed_bytes_hex"));
        expect(sha256(bytes)).toBe(str(v.meta, "signed_bytes_sha256"));
      });

      test("the bundle_id preimage is the canonical payload with an empty bundle_id", () => {
        const preimage = str(v.meta, "bundle_id_preimage_utf8");
        expect(hex(utf8(preimage))).toBe(str(v.meta, "bundle_id_preimage_hex"));
        expect(sha256(utf8(preimage)).startsWith(str(v.meta, "expected_bundle_id"))).toBe(true);
        expect(text(signedBytes({ ...bundle, bundle_id: "" }))).toBe(preimage);
      });

      test("the .wire.json file read as bytes parses to the same bundle", () => {
        expect(text(v.wire)).toBe(wire);
        const fromFile = parseBundle(v.wire);
        expect(text(signedBytes(fromFile))).toBe(text(signedBytes(bundle)));
        expect(fromFile.signature).toBe(bundle.signature);
        expect(fromFile.public_key).toBe(bundle.public_key);
      });

      test("it verifies and names the issuer by key.json's issuer_key_hash", () => {
        const result = verifyBundle(bundle);
        expect(result).toMatchObject({ valid: true, code: null, detail: null, issuer_key_hash: KEY.keyHash });
        expect(result.expected_bundle_id).toBe(bundle.bundle_id);
        expect(() => requireVerified(bundle)).not.toThrow();
      });

      test("re-signing with key.json's seed reproduces the signature and public key byte for byte", () => {
        const unsigned: Bundle = { ...bundle, public_key: null, signature: null, bundle_id: "" };
        const signed = signBundle(unsigned, KEY.seed);
        expect(signed.signature).toBe(str(v.meta, "expected_signature_b64"));
        expect(signed.public_key).toBe(str(v.meta, "expected_public_key_b64"));
        expect(signed.bundle_id).toBe(str(v.meta, "expected_bundle_id"));
        expect(signed.signature).toBe(bundle.signature);
      });
    });
  }
});

describe("for every tampered bundle vector", () => {
  for (const v of TAMPERED) {
    describe(v.name, () => {
      const bundle = parseBundle(v.wire);
      const description = str(v.meta, "description");
      // The reason is read from the vector itself: a stale id fails at the bundle_id check,
      // anything else (another key's signature) at the signature check.
      const idMatches = v.meta.bundle_id_matches !== false && !/bundle_id check/i.test(description);
      const expectedCode = idMatches ? "invalid_signature" : "bundle_id_mismatch";

      test("the vector expects verification to fail", () => {
        expect(v.meta.expected_verify).toBe(false);
      });

      test(`verification fails with ${expectedCode}, as the description says`, () => {
        const result = verifyBundle(bundle);
        expect(result.valid).toBe(false);
        expect(result.code).toBe(expectedCode);
        expect(result.detail).toBeString();
        expect(() => requireVerified(bundle)).toThrow(LinksError);
      });

      test("the recomputed id and the bytes checked are the vector's", () => {
        if (typeof v.meta.recomputed_bundle_id === "string") {
          expect(computeBundleId(bundle)).toBe(v.meta.recomputed_bundle_id);
        }
        expect(text(signedBytes(bundle))).toBe(str(v.meta, "bytes_verified_against_utf8"));
      });
    });
  }
});

describe("when a node stamps unknown fields onto a signed bundle", () => {
  const stamped = `{"village_id":"ops","visibility":"public",${BASIC_WIRE.slice(1)}`;
  const stampedClaim = replaceOnce(stamped, `"claims":[{`, `"claims":[{"note":{"x":1.5},`);

  test("the fields are dropped on reading", () => {
    const b = parseBundle(stampedClaim) as Record<string, unknown>;
    expect("village_id" in b).toBe(false);
    expect("visibility" in b).toBe(false);
    expect("note" in (b.claims as Record<string, unknown>[])[0]!).toBe(false);
  });

  test("they are not signed: the bundle stays valid with the same signed bytes", () => {
    const b = parseBundle(stampedClaim);
    expect(verifyBundle(b).valid).toBe(true);
    expect(text(signedBytes(b))).toBe(str(BASIC.meta, "signed_bytes_utf8"));
  });

  test("changing an unknown field changes nothing", () => {
    const other = replaceOnce(stampedClaim, `"village_id":"ops"`, `"village_id":"elsewhere"`);
    expect(verifyBundle(parseBundle(other)).valid).toBe(true);
    expect(text(signedBytes(parseBundle(other)))).toBe(text(signedBytes(parseBundle(stampedClaim))));
  });
});

describe("when optional fields are missing", () => {
  const minimal =
    `{"bundle_id":"x","issuer":"node-a","created_at":"2024-05-01T12:00:00Z","window_days":30,` +
    `"claims":[{"issuer":"node-a","subject":"s","predicate":"p","window_days":30,"computed_at":"2024-05-01T12:00:00Z"}]}`;

  test("the defaults are filled in", () => {
    const b = parseBundle(minimal);
    expect(b.signature_alg).toBe("Ed25519");
    expect(b.public_key).toBeNull();
    expect(b.signature).toBeNull();
    expect(b.claims[0]).toMatchObject({ object: null, value: null, derivation: null, evidence: [] });
  });

  test("the defaults are signed", () => {
    const payload = text(signedBytes(parseBundle(minimal)));
    expect(payload).toContain(`"signature_alg":"Ed25519"`);
    expect(payload).toContain(`"derivation":null,"evidence":[]`);
    expect(payload).toContain(`"object":null`);
    expect(payload).toContain(`"value":null`);
    expect(payload).not.toContain("public_key");
    expect(payload).not.toContain(`"signature"`);
  });

  test("a bundle signed with defaults omitted still verifies with them written out", () => {
    const signed = signBundle(parseBundle(minimal), KEY.seed);
    const explicit = parseBundle(
      JSON.stringify({
        ...signed,
        claims: signed.claims.map((c) => ({ ...c, object: null, value: null, derivation: null, evidence: [] })),
      }),
    );
    expect(verifyBundle(explicit).valid).toBe(true);
  });

  test("giving a defaulted field a different value breaks the signature", () => {
    const signed = signBundle(parseBundle(minimal), KEY.seed);
    const changed = { ...signed, claims: signed.claims.map((c) => ({ ...c, evidence: ["https://example.org"] })) };
    expect(verifyBundle(parseBundle(JSON.stringify(changed))).code).toBe("bundle_id_mismatch");
  });
});

describe("when a field is missing or has the wrong JSON type", () => {
  const base = {
    bundle_id: "x",
    issuer: "node-a",
    created_at: "2024-05-01T12:00:00Z",
    window_days: 30,
    claims: [{ issuer: "node-a", subject: "s", predicate: "p", window_days: 30, computed_at: "2024-05-01T12:00:00Z" }],
  };
  const baseText = JSON.stringify(base);

  test("the base bundle itself is accepted", () => {
    expect(() => parseBundle(baseText)).not.toThrow();
  });

  for (const field of ["bundle_id", "issuer", "created_at", "window_days", "claims"] as const) {
    test(`a missing ${field} is invalid_schema naming ${field}`, () => {
      const { [field]: _dropped, ...rest } = base;
      const e = schemaError(JSON.stringify(rest));
      expect(e.code).toBe("invalid_schema");
      expect(e.detail).toContain(`${field}: is required`);
    });
  }

  for (const field of ["issuer", "subject", "predicate", "window_days", "computed_at"] as const) {
    test(`a claim without ${field} is invalid_schema naming claims[0].${field}`, () => {
      const { [field]: _dropped, ...claim } = base.claims[0]!;
      const e = schemaError(JSON.stringify({ ...base, claims: [claim] }));
      expect(e.code).toBe("invalid_schema");
      expect(e.detail).toContain(`claims[0].${field}`);
    });
  }

  const claimWindow = `"window_days":30,"computed_at"`;
  const cases: [string, string, string][] = [
    ["window_days as the string \"30\"", replaceOnce(baseText, claimWindow, `"window_days":"30","computed_at"`), "claims[0].window_days"],
    ["window_days as the float 30.0", replaceOnce(baseText, claimWindow, `"window_days":30.0,"computed_at"`), "claims[0].window_days"],
    ["window_days as 3e1", replaceOnce(baseText, claimWindow, `"window_days":3e1,"computed_at"`), "claims[0].window_days"],
    ["window_days as true", replaceOnce(baseText, claimWindow, `"window_days":true,"computed_at"`), "claims[0].window_days"],
    ["window_days as null", replaceOnce(baseText, claimWindow, `"window_days":null,"computed_at"`), "claims[0].window_days"],
    ["the bundle's window_days as 30.0", replaceOnce(baseText, `"window_days":30,"claims"`, `"window_days":30.0,"claims"`), "window_days"],
    ["claims as an object", JSON.stringify({ ...base, claims: {} }), "claims"],
    ["claims as a string", JSON.stringify({ ...base, claims: "[]" }), "claims"],
    ["a claim that is not an object", JSON.stringify({ ...base, claims: [1] }), "claims[0]"],
    ["created_at as a Unix number", JSON.stringify({ ...base, created_at: 1714564800 }), "created_at"],
    ["created_at with a space separator", JSON.stringify({ ...base, created_at: "2024-05-01 12:00:00Z" }), "created_at"],
    ["created_at with 7 fractional digits", JSON.stringify({ ...base, created_at: "2024-05-01T12:00:00.1234567Z" }), "created_at"],
    ["created_at on February 30", JSON.stringify({ ...base, created_at: "2024-02-30T12:00:00Z" }), "created_at"],
    ["a claim's computed_at as a date only", JSON.stringify({ ...base, claims: [{ ...base.claims[0], computed_at: "2024-05-01" }] }), "claims[0].computed_at"],
    ["issuer as a number", JSON.stringify({ ...base, issuer: 7 }), "issuer"],
    ["bundle_id as null", JSON.stringify({ ...base, bundle_id: null }), "bundle_id"],
    ["an evidence entry that is not a string", JSON.stringify({ ...base, claims: [{ ...base.claims[0], evidence: ["a", 1] }] }), "claims[0].evidence[1]"],
    ["object as a number", JSON.stringify({ ...base, claims: [{ ...base.claims[0], object: 5 }] }), "claims[0].object"],
    ["public_key as a number", JSON.stringify({ ...base, public_key: 5 }), "public_key"],
    ["signature_alg as null", JSON.stringify({ ...base, signature_alg: null }), "signature_alg"],
  ];
  for (const [what, input, path] of cases) {
    test(`${what} is invalid_schema naming ${path}`, () => {
      const e = schemaError(input);
      expect(e.code).toBe("invalid_schema");
      expect(e.detail).toMatch(new RegExp(`(^|[ ;])${path.replace(/[[\].]/g, "\\$&")}: `));
    });
  }

  test("a JSON array instead of an object is invalid_schema", () => {
    expect(schemaError("[]").code).toBe("invalid_schema");
  });

  test("text that is not JSON is invalid_json, not a crash", () => {
    expect(schemaError("{").code).toBe("invalid_json");
    expect(schemaError(new Uint8Array([0x7b, 0xff, 0x7d])).code).toBe("invalid_json");
  });

  test("normalizeBundle also takes a plain value that is already well typed", () => {
    expect(normalizeBundle(base).window_days).toBe(30);
  });
});

describe("when a signed field of a valid bundle is tampered with", () => {
  const tamperings: [string, string, string][] = [
    ["the value 1.0 becomes 1", `"value":1.0`, `"value":1`],
    ["an evidence entry is added", `"evidence":[]`, `"evidence":["https://example.org"]`],
    ["computed_at moves by a second", `"computed_at":"2024-05-01T12:00:00Z"`, `"computed_at":"2024-05-01T12:00:01Z"`],
    ["computed_at gains a microsecond", `"computed_at":"2024-05-01T12:00:00Z"`, `"computed_at":"2024-05-01T12:00:00.000001Z"`],
    ["the issuer changes", `"issuer":"node-a","created_at"`, `"issuer":"node-b","created_at"`],
    ["the bundle's window_days changes", `"window_days":30,"claims"`, `"window_days":31,"claims"`],
    ["the derivation becomes null", `"derivation":"log(1 + count_30d)"`, `"derivation":null`],
    ["the object changes case", `"object":"wikipedia:en:Bob"`, `"object":"wikipedia:en:bob"`],
  ];
  for (const [what, from, to] of tamperings) {
    test(`${what}: the bundle is invalid (stale bundle_id)`, () => {
      const result = verifyBundle(parseBundle(replaceOnce(BASIC_WIRE, from, to)));
      expect(result.valid).toBe(false);
      expect(result.code).toBe("bundle_id_mismatch");
    });

    test(`${what}, with the bundle_id recomputed: the signature no longer verifies`, () => {
      const b = parseBundle(replaceOnce(BASIC_WIRE, from, to));
      const result = verifyBundle({ ...b, bundle_id: computeBundleId(b) });
      expect(result.valid).toBe(false);
      expect(result.code).toBe("invalid_signature");
    });
  }

  test("the bundle_id itself in upper case is a mismatch", () => {
    const b = parseBundle(BASIC_WIRE);
    expect(verifyBundle({ ...b, bundle_id: b.bundle_id.toUpperCase() }).code).toBe("bundle_id_mismatch");
  });

  test("a bundle_id that is a path is a mismatch, never valid", () => {
    const b = parseBundle(BASIC_WIRE);
    const result = verifyBundle({ ...b, bundle_id: "../../etc/passwd" });
    expect(result.valid).toBe(false);
    expect(result.code).toBe("bundle_id_mismatch");
  });
});

describe("when the wire text changes but the normalized value does not", () => {
  const equivalents: [string, string, string][] = [
    ["1.0 written as 1.00", `"value":1.0`, `"value":1.00`],
    ["1.0 written as 1e0", `"value":1.0`, `"value":1e0`],
    ["1.0 written as 10E-1", `"value":1.0`, `"value":10E-1`],
    ["computed_at with .000 milliseconds", `"computed_at":"2024-05-01T12:00:00Z"`, `"computed_at":"2024-05-01T12:00:00.000Z"`],
    ["computed_at with an offset", `"computed_at":"2024-05-01T12:00:00Z"`, `"computed_at":"2024-05-01T14:30:00+02:30"`],
    ["computed_at without an offset", `"computed_at":"2024-05-01T12:00:00Z"`, `"computed_at":"2024-05-01T12:00:00"`],
    ["a string written with \\u escapes", `"issuer":"node-a","created_at"`, `"issuer":"\\u006eode-a","created_at"`],
  ];
  for (const [what, from, to] of equivalents) {
    test(`${what}: the bundle stays valid`, () => {
      expect(verifyBundle(parseBundle(replaceOnce(BASIC_WIRE, from, to)))).toMatchObject({ valid: true, code: null });
    });
  }

  test("fields reordered and spaced out: the bundle stays valid", () => {
    const moved = replaceOnce(BASIC_WIRE, `,"signature_alg":"Ed25519"`, "");
    const wire = replaceOnce(moved, `{"bundle_id":`, `{ "signature_alg" : "Ed25519" ,\n\t"bundle_id" :  `);
    expect(verifyBundle(parseBundle(wire))).toMatchObject({ valid: true, code: null });
  });
});

describe("when the bundle is not signed", () => {
  test("public_key and signature null report unsigned_bundle", () => {
    const b = { ...parseBundle(BASIC_WIRE), public_key: null, signature: null };
    expect(verifyBundle(b)).toMatchObject({ valid: false, code: "unsigned_bundle", issuer_key_hash: null });
  });

  test("public_key and signature absent report unsigned_bundle", () => {
    const wire = replaceOnce(BASIC_WIRE, BASIC_WIRE.slice(BASIC_WIRE.indexOf(`,"public_key"`), -1), "");
    expect(verifyBundle(parseBundle(wire)).code).toBe("unsigned_bundle");
  });

  test("a signature without a public_key reports unsigned_bundle", () => {
    const b = { ...parseBundle(BASIC_WIRE), public_key: null };
    expect(verifyBundle(b).code).toBe("unsigned_bundle");
  });

  test("a public_key without a signature reports unsigned_bundle", () => {
    const b = { ...parseBundle(BASIC_WIRE), signature: null };
    expect(verifyBundle(b).code).toBe("unsigned_bundle");
  });
});

describe("when signature_alg is not Ed25519", () => {
  for (const alg of ["RSA", "ed25519", "Ed448", ""]) {
    test(`a bundle claiming ${JSON.stringify(alg)} is refused even with a matching bundle_id`, () => {
      const b = { ...parseBundle(BASIC_WIRE), signature_alg: alg };
      const result = verifyBundle({ ...b, bundle_id: computeBundleId(b) });
      expect(result.valid).toBe(false);
      expect(result.code).toBe("invalid_signature");
    });
  }

  test("signing a bundle that said another alg yields a valid Ed25519 bundle", () => {
    const b = { ...parseBundle(BASIC_WIRE), signature_alg: "ed25519" };
    const signed = signBundle(b, KEY.seed);
    expect(signed.signature_alg).toBe("Ed25519");
    expect(verifyBundle(signed).valid).toBe(true);
    expect(signed.signature).toBe(str(BASIC.meta, "expected_signature_b64"));
  });
});

describe("when public_key or signature is malformed", () => {
  const valid = parseBundle(BASIC_WIRE);
  const pk = KEY.publicKey;
  const sig = new Uint8Array(Buffer.from(valid.signature!, "base64"));
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
  const cases: [string, Partial<Bundle>, string][] = [
    ["a public_key that is not base64", { public_key: "not base64!" }, "invalid_public_key"],
    ["a public_key of 31 bytes", { public_key: b64(pk.subarray(0, 31)) }, "invalid_public_key"],
    ["a public_key of 33 bytes", { public_key: b64(new Uint8Array([...pk, 0])) }, "invalid_public_key"],
    ["an empty public_key", { public_key: "" }, "invalid_public_key"],
    ["a public_key without padding", { public_key: valid.public_key!.replace(/=+$/, "") }, "invalid_public_key"],
    ["a public_key in URL-safe base64", { public_key: Buffer.from(pk).toString("base64url") + "=" }, "invalid_public_key"],
    ["a public_key with a newline", { public_key: valid.public_key! + "\n" }, "invalid_public_key"],
    ["a signature that is not base64", { signature: "!!!!" }, "invalid_signature"],
    ["a signature of 63 bytes", { signature: b64(sig.subarray(0, 63)) }, "invalid_signature"],
    ["a signature of 65 bytes", { signature: b64(new Uint8Array([...sig, 0])) }, "invalid_signature"],
    ["an empty signature", { signature: "" }, "invalid_signature"],
    ["a signature without padding", { signature: valid.signature!.replace(/=+$/, "") }, "invalid_signature"],
    ["another key's public_key", { public_key: SECOND_KEY.publicKeyB64 }, "invalid_signature"],
    ["a signature of zeros", { signature: b64(new Uint8Array(64)) }, "invalid_signature"],
  ];
  for (const [what, change, code] of cases) {
    test(`${what} is refused with ${code}, without throwing`, () => {
      let result: ReturnType<typeof verifyBundle> | undefined;
      expect(() => {
        result = verifyBundle({ ...valid, ...change });
      }).not.toThrow();
      expect(result!.valid).toBe(false);
      expect(result!.code).toBe(code as never);
    });
  }
});

describe("when signing a bundle", () => {
  const unsigned = normalizeBundle({
    bundle_id: "",
    issuer: "node-b",
    created_at: "2024-05-01T12:00:00.5+01:00",
    window_days: 7,
    claims: [{ issuer: "node-b", subject: "a", predicate: "links.weighted_to", window_days: 7, computed_at: "2024-05-01T11:00:00Z" }],
  });

  test("the result has a hex bundle_id, the signer's key and verifies", () => {
    const signed = signBundle(unsigned, SECOND_KEY.seed);
    expect(signed.bundle_id).toMatch(BUNDLE_ID_RE);
    expect(signed.public_key).toBe(SECOND_KEY.publicKeyB64);
    expect(verifyBundle(signed)).toMatchObject({ valid: true, issuer_key_hash: SECOND_KEY.keyHash });
    expect(issuerKeyHash(SECOND_KEY.publicKey)).toBe(SECOND_KEY.keyHash);
  });

  test("signing again with another key replaces the earlier signature", () => {
    const once = signBundle(unsigned, SECOND_KEY.seed);
    const twice = signBundle(once, KEY.seed);
    expect(twice.bundle_id).toBe(once.bundle_id);
    expect(twice.public_key).toBe(KEY.publicKeyB64);
    expect(verifyBundle(twice)).toMatchObject({ valid: true, issuer_key_hash: KEY.keyHash });
  });

  test("the signed bundle survives being written out and read back", () => {
    const signed = signBundle(unsigned, KEY.seed);
    const again = parseBundle(JSON.stringify(signed));
    expect(again.created_at).toBe("2024-05-01T11:00:00.500000Z");
    expect(verifyBundle(again).valid).toBe(true);
  });
});

describe("when a verified bundle's stored text is made from its payload text", () => {
  test("it is exactly the canonical text of the whole bundle, for every vector", async () => {
    const { verifyWithText } = await import("../../../src/core/bundle.ts");
    const { canonicalize } = await import("../../../src/core/canonical.ts");
    for (const v of loadVectors("bundles")) {
      const b = parseBundle(v.wire);
      const { verification, text } = verifyWithText(b);
      expect(verification.valid).toBe(true);
      expect(text).toBe(canonicalize(b as never));
    }
  });

  test("a string value that contains ,\"signature_alg\": does not confuse it", async () => {
    const { verifyWithText } = await import("../../../src/core/bundle.ts");
    const { canonicalize } = await import("../../../src/core/canonical.ts");
    const b = parseBundle(loadVectors("bundles")[0]!.wire);
    const tricky = signBundle({ ...b, issuer: 'x,"signature_alg":"y"', claims: b.claims.map((c) => ({ ...c, subject: ',"signature_alg":' })) }, KEY.seed);
    const { text } = verifyWithText(tricky);
    expect(text).toBe(canonicalize(tricky as never));
  });
});


/** What the general path makes of a text: the bundle's verification and stored text, or the error. */
function generalPath(input: string): string {
  try {
    const { verification, text } = verifyWithText(normalizeBundle(parseJson(input)));
    return JSON.stringify({ verification, text });
  } catch (e) {
    return `error ${(e as LinksError).code}: ${(e as LinksError).detail}`;
  }
}

function parsedPath(input: string): string {
  try {
    const { verification, text } = verifyWithText(parseBundle(input));
    return JSON.stringify({ verification, text });
  } catch (e) {
    return `error ${(e as LinksError).code}: ${(e as LinksError).detail}`;
  }
}

describe("when a bundle arrives already canonical (the fast path)", () => {
  const seed = KEY.seed;
  const signed = (claims: Bundle["claims"]) =>
    signBundle(normalizeBundle({ bundle_id: "", issuer: "n", created_at: "2024-05-01T12:00:00Z", window_days: 7, claims }), seed);
  const claim = (value: JsonValue, extra: Partial<Bundle["claims"][number]> = {}) => ({
    issuer: "n", subject: "s", predicate: "links.weighted_to", object: "o", value, window_days: 7,
    computed_at: "2024-05-01T12:00:00.000001Z", derivation: null, evidence: ["e"], ...extra,
  });

  test("every vector's wire text gives the same verification and stored text as the general path", () => {
    for (const v of [...BUNDLES, ...TAMPERED]) {
      const wire = str(v.meta, "signed_bundle_wire");
      expect(parsedPath(wire)).toBe(generalPath(wire));
      const canonical = canonicalize(normalizeBundle(parseJson(wire)) as unknown as JsonValue);
      expect(parsedPath(canonical)).toBe(generalPath(canonical));
    }
  });

  test("random bundles and every one-character mutation of their canonical text agree with the general path", () => {
    const values = fc.sample(valueArbitrary, { numRuns: 60, seed: 42 }) as JsonValue[];
    let mutated = 0;
    let fast = 0;
    for (const [i, value] of values.entries()) {
      const bundle = signed([claim(value), claim(new JsonFloat(1)), claim(i, { object: null, derivation: "d", subject: "10" })]);
      const text = canonicalize(bundle as unknown as JsonValue);
      expect(parsedPath(text)).toBe(generalPath(text));
      expect(JSON.parse(parsedPath(text)).verification.valid).toBe(true);
      if (Object.isFrozen(parseBundle(text))) fast++;
      for (const [at, replacement] of [[5, "0"], [text.indexOf('"claims"') + 1, "C"], [text.indexOf("2024"), "1"], [text.length - 2, "9"], [text.indexOf(":"), " :"]] as const) {
        const changed = text.slice(0, at) + replacement + text.slice(at + 1);
        expect(parsedPath(changed)).toBe(generalPath(changed));
        mutated++;
      }
    }
    expect(mutated).toBe(300);
    // all but values holding an int past 2^53 or a "__proto__" key
    expect(fast).toBeGreaterThan(40);
  });

  test("a bundle read on the fast path cannot be changed behind its stored text", () => {
    const text = canonicalize(signed([claim(1)]) as unknown as JsonValue);
    const bundle = parseBundle(text);
    expect(Object.isFrozen(bundle)).toBe(true);
    expect(() => {
      (bundle as { issuer: string }).issuer = "someone else";
    }).toThrow();
  });

  test("integral floats, -0, ints past 2^53 and integer-like keys keep their exact meaning", () => {
    for (const value of [new JsonFloat(2), new JsonFloat(-0), 9007199254740993n, { "10": 1, "9": 2, a: [new JsonFloat(1e21)] }] as JsonValue[]) {
      const text = canonicalize(signed([claim(value)]) as unknown as JsonValue);
      expect(parsedPath(text)).toBe(generalPath(text));
      expect(canonicalize(parseBundle(text) as unknown as JsonValue)).toBe(text);
    }
  });
});
