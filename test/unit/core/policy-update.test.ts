import { describe, expect, test } from "bun:test";
import { canonicalize, JsonFloat, toJsonText } from "../../../src/core/canonical.ts";
import { encodeBase64 } from "../../../src/core/base64.ts";
import { publicKeyFromSeed, sign } from "../../../src/core/ed25519.ts";
import { LinksError } from "../../../src/core/errors.ts";
import {
  addPolicySignature,
  type Generation,
  newPolicyUpdate,
  parsePolicyUpdate,
  type PolicyUpdate,
  policyHash,
  policySignedBytes,
  policyUpdateToJson,
  signPolicyUpdateLegacy,
  verifyPolicyUpdate,
} from "../../../src/core/policy-update.ts";
import { hex, KEY, loadVectors, SECOND_KEY, seedFor, sha256, str, text, type Vector } from "./vectors.ts";

const VECTORS = loadVectors("policy_updates");

interface ExpectedSignature {
  public_key: string;
  signature: string;
  where?: string;
}

/**
 * The generation a vector documents, read from its own words: a Links v0.7 / "v1" model is v1,
 * anything newer is v2. Never from the file name.
 */
function documentedGeneration(v: Vector): Generation {
  const model = String(v.meta.model_version ?? "");
  const description = String(v.meta.description ?? "");
  return /^v1\b/.test(model) || /\bv0\.7\b/.test(model) || /\bv1 artifact\b/.test(description) ? "v1" : "v2";
}

function keyHashOf(publicKeyB64: string): string {
  return sha256(new Uint8Array(Buffer.from(publicKeyB64, "base64")));
}

function unsignedCopy(u: PolicyUpdate): PolicyUpdate {
  return { ...u, public_key: null, signature: null, signatures: [] };
}

function replaceOnce(haystack: string, needle: string, replacement: string): string {
  const at = haystack.indexOf(needle);
  if (at < 0 || haystack.indexOf(needle, at + 1) >= 0) throw new Error(`${needle} must occur exactly once`);
  return haystack.slice(0, at) + replacement + haystack.slice(at + needle.length);
}

function schemaError(input: string): LinksError {
  try {
    parsePolicyUpdate(input);
  } catch (e) {
    if (e instanceof LinksError) return e;
    throw e;
  }
  throw new Error("expected parsePolicyUpdate to refuse the input");
}

const V1 = VECTORS.find((v) => documentedGeneration(v) === "v1");
const V2 = VECTORS.find((v) => documentedGeneration(v) === "v2");

test("there are vectors of both generations", () => {
  expect(V1).toBeDefined();
  expect(V2).toBeDefined();
});

describe("for every policy-update vector", () => {
  for (const v of VECTORS) {
    describe(v.name, () => {
      const wire = str(v.meta, "signed_update_wire");
      const update = parsePolicyUpdate(wire);
      const expected = v.meta.expected_signatures as ExpectedSignature[];

      test("the vector expects a valid artifact", () => {
        expect(v.meta.expected_verify).toBe(true);
      });

      test("the policy hash is expected_policy_hash and the canonical policy policy_canonical_utf8", () => {
        expect(policyHash(update.policy)).toBe(str(v.meta, "expected_policy_hash"));
        expect(update.policy_hash).toBe(str(v.meta, "expected_policy_hash"));
        expect(canonicalize(update.policy)).toBe(str(v.meta, "policy_canonical_utf8"));
        if (typeof v.meta.policy_canonical_hex === "string") {
          expect(hex(new TextEncoder().encode(canonicalize(update.policy)))).toBe(v.meta.policy_canonical_hex);
        }
      });

      test("the signed bytes are signed_bytes_utf8 exactly", () => {
        const bytes = policySignedBytes(update);
        expect(text(bytes)).toBe(str(v.meta, "signed_bytes_utf8"));
        expect(hex(bytes)).toBe(str(v.meta, "signed_bytes_hex"));
        if (typeof v.meta.signed_bytes_sha256 === "string") expect(sha256(bytes)).toBe(v.meta.signed_bytes_sha256);
      });

      test(`it is read as ${documentedGeneration(v)}, the generation its model documents`, () => {
        expect(update.generation).toBe(documentedGeneration(v));
        // v2 signs every v2 field (defaults filled); v1 exactly the six v1 fields.
        const signedKeys = Object.keys(JSON.parse(str(v.meta, "signed_bytes_utf8")) as object);
        if (update.generation === "v1") {
          expect(signedKeys).toEqual(["actor", "created_at", "policy", "policy_hash", "signature_alg", "village_id"]);
        } else {
          expect(signedKeys).toContain("lifecycle_state");
          expect(signedKeys).toContain("quorum");
        }
      });

      test("the .wire.json file read as bytes parses to the same artifact", () => {
        expect(text(v.wire)).toBe(wire);
        const fromFile = parsePolicyUpdate(v.wire);
        expect(fromFile.generation).toBe(update.generation);
        expect(text(policySignedBytes(fromFile))).toBe(text(policySignedBytes(update)));
      });

      test("it verifies, with the signers of expected_signatures", () => {
        const result = verifyPolicyUpdate(update);
        expect(result).toMatchObject({ valid: true, code: null, generation: documentedGeneration(v) });
        expect(result.policy_hash).toBe(str(v.meta, "expected_policy_hash"));
        expect([...result.signers].sort()).toEqual([...new Set(expected.map((s) => keyHashOf(s.public_key)))].sort());
      });

      test("re-signing with the seeds reproduces every expected signature", () => {
        expect(expected.length).toBeGreaterThan(0);
        for (const sig of expected) {
          const seed = seedFor(sig.public_key);
          const atTopLevel = update.signature === sig.signature && update.public_key === sig.public_key;
          const inArray = update.signatures.some((s) => s.signature === sig.signature && s.public_key === sig.public_key);
          expect(atTopLevel || inArray).toBe(true);
          if (sig.where !== undefined) expect(sig.where.includes("top-level")).toBe(atTopLevel);
          if (atTopLevel) {
            const signed = signPolicyUpdateLegacy(unsignedCopy(update), seed);
            expect(signed.public_key).toBe(sig.public_key);
            expect(signed.signature).toBe(sig.signature);
          } else {
            const signed = addPolicySignature(unsignedCopy(update), seed);
            expect(signed.signatures).toEqual([{ public_key: sig.public_key, signature: sig.signature, alg: "ed25519" }]);
          }
        }
      });
    });
  }
});

describe("when a second signer appends a signature to the v1 artifact", () => {
  const v1 = parsePolicyUpdate(V1 ? V1.wire : "{}");
  const cosigned = addPolicySignature(v1, SECOND_KEY.seed);

  test("it stays v1 and its signed bytes do not change", () => {
    expect(cosigned.generation).toBe("v1");
    expect(text(policySignedBytes(cosigned))).toBe(text(policySignedBytes(v1)));
  });

  test("both signers verify", () => {
    const result = verifyPolicyUpdate(cosigned);
    expect(result.valid).toBe(true);
    expect(result.signers).toEqual([KEY.keyHash, SECOND_KEY.keyHash]);
    expect(result.checks.map((c) => [c.where, c.valid])).toEqual([["top-level", true], ["signatures[0]", true]]);
  });

  test("it stays v1 after being written out and read back", () => {
    const again = parsePolicyUpdate(toJsonText(policyUpdateToJson(cosigned)));
    expect(again.generation).toBe("v1");
    expect(again.signatures).toHaveLength(1);
    expect(verifyPolicyUpdate(again).signers).toEqual([KEY.keyHash, SECOND_KEY.keyHash]);
  });

  test("an empty signatures array on the wire does not make it v2", () => {
    const wire = str(V1!.meta, "signed_update_wire");
    const withArray = parsePolicyUpdate(wire.slice(0, -1) + `,"signatures":[]}`);
    expect(withArray.generation).toBe("v1");
    expect(verifyPolicyUpdate(withArray).valid).toBe(true);
  });
});

describe("when the same key signs twice", () => {
  const v1 = parsePolicyUpdate(V1 ? V1.wire : "{}");

  test("a key at top level and in signatures[] counts once in signers", () => {
    const again = addPolicySignature(v1, KEY.seed);
    const result = verifyPolicyUpdate(again);
    expect(result.checks).toHaveLength(2);
    expect(result.checks.every((c) => c.valid)).toBe(true);
    expect(result.signers).toEqual([KEY.keyHash]);
  });

  test("signing twice into signatures[] keeps one entry for the key", () => {
    const twice = addPolicySignature(addPolicySignature(unsignedCopy(v1), SECOND_KEY.seed), SECOND_KEY.seed);
    expect(twice.signatures).toHaveLength(1);
    expect(verifyPolicyUpdate(twice).signers).toEqual([SECOND_KEY.keyHash]);
  });

  test("a duplicated signatures[] entry still counts once", () => {
    const signed = addPolicySignature(unsignedCopy(v1), SECOND_KEY.seed);
    const duplicated = { ...signed, signatures: [...signed.signatures, ...signed.signatures] };
    const result = verifyPolicyUpdate(duplicated);
    expect(result.checks).toHaveLength(2);
    expect(result.signers).toEqual([SECOND_KEY.keyHash]);
  });
});

describe("when quorum_metadata carries the quorum", () => {
  const v2Wire = V2 ? str(V2.meta, "signed_update_wire") : "{}";
  const metadata = `{"model":"m_of_n","threshold_m":2,"required_weight":2}`;
  const viaMetadata = replaceOnce(
    replaceOnce(v2Wire, `"quorum":null,`, ""),
    `"quorum_metadata":null`,
    `"quorum_metadata":${metadata}`,
  );

  test("it is read as quorum when quorum is absent, defaults filled and the weight a float", () => {
    const u = parsePolicyUpdate(viaMetadata);
    expect(u.generation).toBe("v2");
    if (u.generation !== "v2") return;
    expect(u.quorum).toEqual({ model: "m_of_n", threshold_m: 2, required_weight: new JsonFloat(2), requirements: [] });
    const signed = text(policySignedBytes(u));
    expect(signed).toContain(`"quorum":{"model":"m_of_n","required_weight":2.0,"requirements":[],"threshold_m":2}`);
    expect(signed).not.toContain("quorum_metadata");
  });

  test("it is read as quorum when quorum is null", () => {
    const u = parsePolicyUpdate(replaceOnce(v2Wire, `"quorum_metadata":null`, `"quorum_metadata":${metadata}`));
    expect(u.generation === "v2" && u.quorum?.model).toBe("m_of_n");
  });

  test("a quorum that is set wins over quorum_metadata", () => {
    const both = replaceOnce(
      replaceOnce(v2Wire, `"quorum":null`, `"quorum":{"model":"weighted"}`),
      `"quorum_metadata":null`,
      `"quorum_metadata":${metadata}`,
    );
    const u = parsePolicyUpdate(both);
    expect(u.generation === "v2" && u.quorum?.model).toBe("weighted");
  });

  test("quorum_metadata alone makes an otherwise v1 artifact v2", () => {
    const wire = str(V1!.meta, "signed_update_wire");
    const u = parsePolicyUpdate(wire.slice(0, -1) + `,"quorum_metadata":${metadata}}`);
    expect(u.generation).toBe("v2");
    // the v1 signature covered six fields only: as v2 it no longer verifies
    expect(verifyPolicyUpdate(u).valid).toBe(false);
  });

  test("the signature of the original artifact survives quorum_metadata being nulled or dropped", () => {
    const dropped = replaceOnce(v2Wire, `,"quorum_metadata":null`, "");
    expect(verifyPolicyUpdate(parsePolicyUpdate(dropped)).valid).toBe(true);
  });

  test("signed with quorum_metadata, it verifies as the same artifact with quorum", () => {
    const signed = signPolicyUpdateLegacy(unsignedCopy(parsePolicyUpdate(viaMetadata)), KEY.seed);
    const written = toJsonText(policyUpdateToJson(signed));
    expect(written).toContain(`"quorum":{`);
    expect(verifyPolicyUpdate(parsePolicyUpdate(written)).valid).toBe(true);
  });
});

describe("when the artifact does not check out", () => {
  const v2Wire = V2 ? str(V2.meta, "signed_update_wire") : "{}";
  const v1Wire = V1 ? str(V1.meta, "signed_update_wire") : "{}";

  test("a policy_hash that does not match the policy is policy_hash_mismatch", () => {
    const u = parsePolicyUpdate(v2Wire);
    const result = verifyPolicyUpdate({ ...u, policy_hash: "0".repeat(64) });
    expect(result).toMatchObject({ valid: false, code: "policy_hash_mismatch" });
    expect(result.policy_hash).toBe(u.policy_hash);
  });

  test("a policy changed after signing is invalid (its hash no longer matches)", () => {
    const u = parsePolicyUpdate(replaceOnce(v1Wire, `"max_window_days":14`, `"max_window_days":15`));
    expect(verifyPolicyUpdate(u)).toMatchObject({ valid: false, code: "policy_hash_mismatch" });
  });

  test("a policy float 1.0 turned into the int 1 changes its hash", () => {
    const u = parsePolicyUpdate(replaceOnce(v1Wire, `"a":1.0`, `"a":1`));
    expect(verifyPolicyUpdate(u)).toMatchObject({ valid: false, code: "policy_hash_mismatch" });
  });

  test("a policy changed after signing, its hash updated too, is invalid_signature", () => {
    for (const wire of [v1Wire, v2Wire]) {
      const u = parsePolicyUpdate(wire);
      const policy = { ...u.policy, max_window_days: 1 };
      const result = verifyPolicyUpdate({ ...u, policy, policy_hash: policyHash(policy) });
      expect(result).toMatchObject({ valid: false, code: "invalid_signature", signers: [] });
    }
  });

  test("another signed field changed after signing is invalid", () => {
    const u = parsePolicyUpdate(v2Wire);
    expect(verifyPolicyUpdate({ ...u, lifecycle_state: "active" } as PolicyUpdate).valid).toBe(false);
    expect(verifyPolicyUpdate({ ...u, created_at: "2024-05-01T12:00:00.000001Z" }).valid).toBe(false);
    expect(verifyPolicyUpdate({ ...u, actor: null }).valid).toBe(false);
  });

  test("a signature made by a key other than public_key is invalid", () => {
    const u = parsePolicyUpdate(v2Wire);
    const result = verifyPolicyUpdate({ ...u, public_key: SECOND_KEY.publicKeyB64 });
    expect(result).toMatchObject({ valid: false, code: "invalid_signature", signers: [] });
    expect(result.checks).toEqual([{ where: "top-level", key_hash: SECOND_KEY.keyHash, valid: false }]);
  });

  test("a signatures[] entry naming the wrong key is invalid", () => {
    const signed = addPolicySignature(unsignedCopy(parsePolicyUpdate(v2Wire)), KEY.seed);
    const entry = { ...signed.signatures[0]!, public_key: SECOND_KEY.publicKeyB64 };
    expect(verifyPolicyUpdate({ ...signed, signatures: [entry] }).valid).toBe(false);
  });

  test("an artifact with no signature at all is invalid", () => {
    for (const wire of [v1Wire, v2Wire]) {
      const result = verifyPolicyUpdate(unsignedCopy(parsePolicyUpdate(wire)));
      expect(result).toMatchObject({ valid: false, code: "policy_signature_required", signers: [], checks: [] });
    }
  });

  test("one bad signature beside a good one leaves the artifact valid with the good signer", () => {
    const u = addPolicySignature(parsePolicyUpdate(v2Wire), SECOND_KEY.seed);
    const broken = { ...u, signature: u.signatures[0]!.signature };
    const result = verifyPolicyUpdate(broken);
    expect(result.valid).toBe(true);
    expect(result.signers).toEqual([SECOND_KEY.keyHash]);
  });

  test("malformed base64, wrong lengths and other algorithms are refused without throwing", () => {
    const u = addPolicySignature(unsignedCopy(parsePolicyUpdate(v2Wire)), KEY.seed);
    const good = u.signatures[0]!;
    const bad = [
      { ...good, public_key: "not base64" },
      { ...good, public_key: Buffer.from(KEY.publicKey.subarray(0, 31)).toString("base64") },
      { ...good, signature: good.signature.replace(/=+$/, "") },
      { ...good, signature: Buffer.from(Buffer.from(good.signature, "base64").subarray(0, 63)).toString("base64") },
      { ...good, alg: "rsa" },
    ];
    for (const entry of bad) {
      const result = verifyPolicyUpdate({ ...u, signatures: [entry] });
      expect(result.valid).toBe(false);
      expect(result.code).toBe("invalid_signature");
    }
    expect(verifyPolicyUpdate({ ...u, signatures: [{ ...good, alg: "Ed25519" }] }).valid).toBe(true);
  });

  test("a top-level signature under another signature_alg is refused", () => {
    const u = { ...parsePolicyUpdate(v1Wire), signature_alg: "RSA" } as PolicyUpdate;
    const signature = encodeBase64(sign(policySignedBytes(u), KEY.seed));
    const forged = { ...u, public_key: encodeBase64(publicKeyFromSeed(KEY.seed)), signature };
    expect(verifyPolicyUpdate(forged).valid).toBe(false);
  });

  test("signing an artifact that names another signature_alg signs it as Ed25519", () => {
    const u = { ...parsePolicyUpdate(v1Wire), signature_alg: "RSA" } as PolicyUpdate;
    const resigned = signPolicyUpdateLegacy(u, KEY.seed);
    expect(resigned.signature_alg).toBe("Ed25519");
    expect(verifyPolicyUpdate(resigned).valid).toBe(true);
  });
});

describe("when a field is missing or has the wrong type", () => {
  const v2Wire = V2 ? str(V2.meta, "signed_update_wire") : "{}";
  const cases: [string, string, string][] = [
    ["a policy that is an array", replaceOnce(v2Wire, `"policy":{`, `"policy":[{`).replace(`},"policy_hash"`, `}],"policy_hash"`), "policy"],
    ["a missing village_id", replaceOnce(v2Wire, `"village_id":"v1",`, ""), "village_id"],
    ["created_at with a space", replaceOnce(v2Wire, `"2024-05-01T12:00:00Z"`, `"2024-05-01 12:00:00Z"`), "created_at"],
    ["activation_height as \"5\"", replaceOnce(v2Wire, `"activation_height":null`, `"activation_height":"5"`), "activation_height"],
    ["expires_at as a number", replaceOnce(v2Wire, `"expires_at":null`, `"expires_at":1714564800`), "expires_at"],
    ["quorum.threshold_m as 2.0", replaceOnce(v2Wire, `"quorum":null`, `"quorum":{"model":"m","threshold_m":2.0}`), "quorum.threshold_m"],
    ["a quorum without model", replaceOnce(v2Wire, `"quorum":null`, `"quorum":{}`), "quorum.model"],
    ["a signatures[] entry without public_key", replaceOnce(v2Wire, `"signatures":[]`, `"signatures":[{"signature":"x"}]`), "signatures[0].public_key"],
    ["change_summary.added with a number", replaceOnce(v2Wire, `"change_summary":null`, `"change_summary":{"added":[1]}`), "change_summary.added[0]"],
  ];
  for (const [what, input, path] of cases) {
    test(`${what} is invalid_schema naming ${path}`, () => {
      const e = schemaError(input);
      expect(e.code).toBe("invalid_schema");
      expect(e.detail).toContain(`${path}: `);
    });
  }

  test("a JSON array is invalid_schema", () => {
    expect(schemaError("[]").code).toBe("invalid_schema");
  });
});

describe("when links builds a new policy update", () => {
  const policy = { visibility: "village", max_window_days: 14, weights: { a: new JsonFloat(1), "😀": 2, "～": 3 } };
  const fresh = newPolicyUpdate({
    villageId: "ops",
    policy,
    actor: "alice",
    previousPolicyHash: "ab".repeat(32),
    createdAt: "2024-05-01T14:00:00.25+02:00",
  });

  test("it is an unsigned v2 proposal with the policy's hash", () => {
    expect(fresh.generation).toBe("v2");
    if (fresh.generation !== "v2") return;
    expect(fresh).toMatchObject({
      village_id: "ops",
      actor: "alice",
      created_at: "2024-05-01T12:00:00.250000Z",
      lifecycle_state: "proposal",
      previous_policy_hash: "ab".repeat(32),
      policy_hash: policyHash(policy),
      public_key: null,
      signature: null,
      signatures: [],
    });
    expect(canonicalize(fresh.policy)).toBe(`{"max_window_days":14,"visibility":"village","weights":{"a":1.0,"～":3,"😀":2}}`);
    expect(verifyPolicyUpdate(fresh).code).toBe("policy_signature_required");
  });

  test("signed, written out and read back it has the same signed bytes and verifies", () => {
    const signed = addPolicySignature(addPolicySignature(fresh, KEY.seed), SECOND_KEY.seed);
    const written = toJsonText(policyUpdateToJson(signed));
    const again = parsePolicyUpdate(written);
    expect(again.generation).toBe("v2");
    expect(text(policySignedBytes(again))).toBe(text(policySignedBytes(signed)));
    expect(toJsonText(policyUpdateToJson(again))).toBe(written);
    expect(verifyPolicyUpdate(again)).toMatchObject({ valid: true, signers: [KEY.keyHash, SECOND_KEY.keyHash] });
  });

  test("without createdAt it is stamped with the current time in microseconds", () => {
    const now = newPolicyUpdate({ villageId: "ops", policy: {} });
    expect(now.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$/);
    expect(now.actor).toBeNull();
    expect(now.policy_hash).toBe(sha256("{}"));
  });
});
