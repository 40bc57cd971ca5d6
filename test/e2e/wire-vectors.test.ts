/**
 * Every wire-format vector (made by Python Links) passes through the real `dist/links` binary:
 * bundles and policy updates verify with the expected ids and hashes, tampered ones fail, and
 * re-signing a vector's payload with the vector key reproduces its signature byte for byte.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  errorCode,
  json,
  links,
  makeTempDir,
  sha256Hex,
  VECTORS_DIR,
  vectorKey,
  writeVectorKeyFile,
  type TempDir,
} from "./harness.ts";

interface BundleVector {
  name: string;
  expected_bundle_id: string;
  expected_signature_b64: string;
  expected_public_key_b64: string;
  expected_verify: boolean;
}

interface PolicyVector {
  name: string;
  expected_policy_hash: string;
  signed_bytes_utf8: string;
  expected_signatures: { public_key: string; signature: string; where?: string }[];
  expected_verify: boolean;
}

interface BundleReport {
  valid: boolean;
  bundle_id: string | null;
  issuer_key_hash: string | null;
  code: string | null;
  detail: string | null;
}

interface PolicyReport {
  valid: boolean;
  policy_hash: string | null;
  generation: string | null;
  signers: string[];
  code: string | null;
}

/** The `*.wire.json` files of one vector folder, each with its description file. */
function vectorsIn<T>(folder: string): { name: string; wireFile: string; vector: T }[] {
  const dir = join(VECTORS_DIR, folder);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".wire.json"))
    .sort()
    .map((f) => ({
      name: f.slice(0, -".wire.json".length),
      wireFile: join(dir, f),
      vector: JSON.parse(readFileSync(join(dir, f.replace(/\.wire\.json$/, ".json")), "utf8")) as T,
    }));
}

/** Replaces the top-level signature and public key with null, textually (no lossy JSON.parse). */
function stripSignature(wireText: string): string {
  const out = wireText.replace(/"signature":"[^"]*"/, '"signature":null').replace(/"public_key":"[^"]*"/, '"public_key":null');
  expect(out).not.toContain('"signature":"');
  return out;
}

const keyHashOfB64 = (b64: string) => sha256Hex(Buffer.from(b64, "base64"));

const bundles = vectorsIn<BundleVector>("bundles");
const tampered = vectorsIn<BundleVector>("tampered");
const policies = vectorsIn<PolicyVector>("policy_updates");

let tmp: TempDir;
let keyFile: string;
beforeAll(() => {
  tmp = makeTempDir("links-e2e-vectors-");
  keyFile = writeVectorKeyFile(tmp.path);
});
afterAll(() => tmp.remove());

test("the vector folders are not empty", () => {
  expect(bundles.length).toBeGreaterThan(0);
  expect(tampered.length).toBeGreaterThan(0);
  expect(policies.length).toBeGreaterThan(0);
});

describe("claims verify on every bundle vector", () => {
  for (const { name, wireFile, vector } of bundles) {
    test(`${name} is valid with the expected bundle id and issuer key hash`, async () => {
      const r = await links(["claims", "verify", wireFile, "--json"]);
      const report = json<BundleReport>(r);
      expect(r.code).toBe(0);
      expect(report.valid).toBe(true);
      expect(report.bundle_id).toBe(vector.expected_bundle_id);
      expect(report.issuer_key_hash).toBe(keyHashOfB64(vector.expected_public_key_b64));
      expect(report.issuer_key_hash).toBe(vectorKey().issuer_key_hash);
      expect(r.stdout.trim().split("\n")).toHaveLength(1);
    });
  }
});

describe("claims verify on every tampered vector", () => {
  for (const { name, wireFile, vector } of tampered) {
    test(`${name} fails with exit 1 and a reason code`, async () => {
      expect(vector.expected_verify).toBe(false);
      const r = await links(["claims", "verify", wireFile, "--json"]);
      const report = json<BundleReport>(r);
      expect(r.code).toBe(1);
      expect(report.valid).toBe(false);
      expect(report.code).toMatch(/^[a-z_]+$/);
      expect(report.detail).toBeTruthy();
    });

    test(`${name} without --json says it is invalid on stderr and prints nothing on stdout`, async () => {
      const r = await links(["claims", "verify", wireFile]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^invalid: .* \[[a-z_]+\]$/m);
    });
  }
});

describe("policy verify on every policy-update vector", () => {
  for (const { name, wireFile, vector } of policies) {
    // The generation is decided by the signed fields: a v2 artifact signs lifecycle_state.
    const generation = vector.signed_bytes_utf8.includes('"lifecycle_state"') ? "v2" : "v1";
    test(`${name} is a valid ${generation} update with the expected policy hash and signers`, async () => {
      const r = await links(["policy", "verify", wireFile, "--json"]);
      const report = json<PolicyReport>(r);
      expect(r.code).toBe(0);
      expect(report.valid).toBe(vector.expected_verify);
      expect(report.policy_hash).toBe(vector.expected_policy_hash);
      expect(report.generation).toBe(generation);
      const expectedSigners = [...new Set(vector.expected_signatures.map((s) => keyHashOfB64(s.public_key)))].sort();
      expect([...report.signers].sort()).toEqual(expectedSigners);
    });
  }
});

describe("re-signing a vector's payload with the vector key", () => {
  for (const { name, wireFile, vector } of bundles) {
    test(`claims sign reproduces the signature of ${name} byte for byte`, async () => {
      const stripped = tmp.join(`${name}.stripped.json`);
      const signed = tmp.join(`${name}.resigned.json`);
      writeFileSync(stripped, stripSignature(readFileSync(wireFile, "utf8")));
      const r = await links(["claims", "sign", stripped, "--key", keyFile, "--out", signed]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(vector.expected_bundle_id);
      const out = JSON.parse(readFileSync(signed, "utf8")) as { signature: string; public_key: string; bundle_id: string };
      expect(out.signature).toBe(vector.expected_signature_b64);
      expect(out.public_key).toBe(vector.expected_public_key_b64);
      expect(out.bundle_id).toBe(vector.expected_bundle_id);
      expect((await links(["claims", "verify", signed])).code).toBe(0);
    });
  }

  // The top-level (legacy) signature is what `links policy sign` makes.
  const topLevel = policies.filter(({ wireFile, vector }) => {
    const wire = JSON.parse(readFileSync(wireFile, "utf8")) as { signature?: string | null };
    return vector.expected_signatures.some((s) => s.where === "top-level legacy" || (wire.signature && s.signature === wire.signature));
  });

  test("at least one policy vector carries the top-level legacy signature", () => {
    expect(topLevel.some(({ vector }) => vector.expected_signatures.some((s) => s.where === "top-level legacy"))).toBe(true);
  });

  for (const { name, wireFile, vector } of topLevel) {
    test(`policy sign reproduces the top-level signature of ${name} byte for byte`, async () => {
      const stripped = tmp.join(`${name}.stripped.json`);
      const signed = tmp.join(`${name}.resigned.json`);
      writeFileSync(stripped, stripSignature(readFileSync(wireFile, "utf8")));
      const r = await links(["policy", "sign", stripped, "--key", keyFile, "--out", signed]);
      expect(r.code).toBe(0);
      const out = JSON.parse(readFileSync(signed, "utf8")) as { signature: string; public_key: string; policy_hash: string };
      const expected = vector.expected_signatures[0];
      expect(out.signature).toBe(expected?.signature ?? "(none)");
      expect(out.public_key).toBe(expected?.public_key ?? "(none)");
      expect(out.policy_hash).toBe(vector.expected_policy_hash);
      const verify = json<PolicyReport>(await links(["policy", "verify", signed, "--json"]));
      expect(verify.valid).toBe(true);
      expect(verify.generation).toBe(vector.signed_bytes_utf8.includes('"lifecycle_state"') ? "v2" : "v1");
    });
  }
});

describe("claims verify on files that are not bundles", () => {
  test("a file that is not JSON exits 1 with code invalid_json", async () => {
    const file = tmp.join("not-json.txt");
    writeFileSync(file, "this is not json\n");
    const r = await links(["claims", "verify", file, "--json"]);
    expect(r.code).toBe(1);
    const report = json<BundleReport>(r);
    expect(report.valid).toBe(false);
    expect(report.code).toBe("invalid_json");
  });

  test("a bundle with a wrong field type exits 1 with invalid_schema naming the field", async () => {
    const wire = readFileSync(bundles[0]?.wireFile ?? "", "utf8");
    const file = tmp.join("wrong-type.json");
    writeFileSync(file, wire.replace('"window_days":30,"claims"', '"window_days":"30","claims"'));
    const r = await links(["claims", "verify", file, "--json"]);
    expect(r.code).toBe(1);
    const report = json<BundleReport>(r);
    expect(report.valid).toBe(false);
    expect(report.code).toBe("invalid_schema");
    expect(report.detail).toContain("window_days");
  });

  test("a claim field of the wrong type is named with its position", async () => {
    const wire = readFileSync(bundles[0]?.wireFile ?? "", "utf8");
    const file = tmp.join("wrong-claim-type.json");
    writeFileSync(file, wire.replace(/"subject":"[^"]*"/, '"subject":5'));
    const r = await links(["claims", "verify", file, "--json"]);
    expect(r.code).toBe(1);
    const report = json<BundleReport>(r);
    expect(report.code).toBe("invalid_schema");
    expect(report.detail).toContain("claims[0].subject");
  });

  test("a missing file exits 1 with a clear message naming the file", async () => {
    const file = tmp.join("does-not-exist.json");
    const r = await links(["claims", "verify", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`links: error: bundle file not found: ${file}`);
    expect(errorCode(r.stderr)).toBe("not_found");
  });

  test("a missing file with --json still prints one JSON report", async () => {
    const r = await links(["claims", "verify", tmp.join("does-not-exist.json"), "--json"]);
    expect(r.code).toBe(1);
    const report = json<BundleReport>(r);
    expect(report.valid).toBe(false);
    expect(report.code).toBe("not_found");
  });
});
