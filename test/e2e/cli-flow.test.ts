/**
 * An operator's day with the real `dist/links` binary: keys, derive, build/sign/verify, villages
 * and members, issuer lists, local policy changes, ingest, quarantine review, query, reindex,
 * audit, data directory selection, and --help / --version everywhere.
 */
import type { AuditRow } from "../../src/storage/audit.ts";
import type { IndexRow } from "../../src/storage/index-rows.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import {
  errorCode,
  fileMode,
  json,
  lastLine,
  links,
  linksOk,
  listFiles,
  makeTempDir,
  readJsonlFile,
  sha256Hex,
  signedBundleFile,
  type TempDir,
} from "./harness.ts";

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

interface Member {
  member_id: string;
  role: string;
  added_at: string;
  revoked: boolean;
}
interface Village {
  village_id: string;
  name: string;
  policy: Record<string, unknown> & {
    allowed_predicates: string[];
    issuer_allowlist: string[];
    issuer_blocklist: string[];
    issuer_id_allowlist: string[];
    issuer_id_blocklist: string[];
  };
}

let tmp: TempDir;
let data: string;
/** every token any command printed: none may ever reach a file */
const tokens: string[] = [];

beforeAll(() => {
  tmp = makeTempDir("links-e2e-flow-");
  data = tmp.join("data");
});
afterAll(() => tmp.remove());

const D = () => ["--data", data];

async function createVillage(vid: string, admin = "alice"): Promise<string> {
  const r = await linksOk(["villages", "create", vid, `Village ${vid}`, admin, ...D()]);
  const token = lastLine(r.stdout);
  tokens.push(token);
  return token;
}

async function showVillage(vid: string): Promise<Village> {
  return json<Village>(await linksOk(["villages", "show", vid, "--json", ...D()]));
}

async function members(vid: string): Promise<Member[]> {
  return json<Member[]>(await linksOk(["villages", "members", vid, "--json", ...D()]));
}

async function audit(vid: string): Promise<AuditRow[]> {
  return json<AuditRow[]>(await linksOk(["audit", "tail", "--json", "--village-id", vid, "--limit", "10000", ...D()]));
}

describe("keys gen", () => {
  test("writes a private key with mode 0600 and a public key with mode 0644, and prints the key hash", async () => {
    const dir = tmp.join("keys1");
    mkdirSync(dir);
    const r = await linksOk(["keys", "gen", "--out-dir", dir]);
    const priv = join(dir, "ed25519.key");
    const pub = join(dir, "ed25519.pub");
    expect(fileMode(priv)).toBe(0o600);
    expect(fileMode(pub)).toBe(0o644);
    const pubText = readFileSync(pub, "utf8");
    expect(pubText).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(readFileSync(priv, "utf8")).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    const keyHash = sha256Hex(Buffer.from(pubText.trim(), "base64"));
    expect(lastLine(r.stdout)).toBe(keyHash);
    expect(lastLine((await linksOk(["keys", "hash", pub])).stdout)).toBe(keyHash);
  });

  test("refuses to overwrite existing key files without --force", async () => {
    const dir = tmp.join("keys2");
    mkdirSync(dir);
    await linksOk(["keys", "gen", "--out-dir", dir]);
    const before = readFileSync(join(dir, "ed25519.key"), "utf8");
    const r = await links(["keys", "gen", "--out-dir", dir]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("file_exists");
    expect(r.stderr).toContain("--force");
    expect(readFileSync(join(dir, "ed25519.key"), "utf8")).toBe(before);
  });

  test("replaces the key pair with --force and keeps the modes", async () => {
    const dir = tmp.join("keys3");
    mkdirSync(dir);
    const first = lastLine((await linksOk(["keys", "gen", "--out-dir", dir])).stdout);
    const before = readFileSync(join(dir, "ed25519.key"), "utf8");
    const second = json<{ key_hash: string }>(await linksOk(["keys", "gen", "--out-dir", dir, "--force", "--json"]));
    expect(second.key_hash).not.toBe(first);
    expect(readFileSync(join(dir, "ed25519.key"), "utf8")).not.toBe(before);
    expect(fileMode(join(dir, "ed25519.key"))).toBe(0o600);
    expect(fileMode(join(dir, "ed25519.pub"))).toBe(0o644);
    expect(lastLine((await linksOk(["keys", "hash", join(dir, "ed25519.pub")])).stdout)).toBe(second.key_hash);
  });
});

describe("derive, then claims build, sign and verify", () => {
  const odd = 'b<&"x';
  let edgesFile: string;
  let unsignedFile: string;
  let signedFile: string;
  let keyFile: string;

  beforeAll(async () => {
    const obs = [
      { observation_id: 1, timestamp: "2024-05-01T12:00:00Z", actor_entity_id: odd, kind: "user_talk_edit", target_entity_id: "a" },
      { observation_id: 2, timestamp: "2024-05-01T12:00:00Z", actor_entity_id: "a", kind: "user_talk_edit", target_entity_id: "c" },
      { observation_id: 3, timestamp: "2024-05-02T12:00:00Z", actor_entity_id: "a", kind: "user_talk_edit", target_entity_id: "c" },
      { observation_id: 4, timestamp: "2024-05-02T12:00:00Z", actor_entity_id: "a", kind: "user_talk_edit", target_entity_id: "b" },
      // the same observation twice counts once; other kinds and old observations do not count
      { observation_id: 4, timestamp: "2024-05-02T12:00:00Z", actor_entity_id: "a", kind: "user_talk_edit", target_entity_id: "b" },
      { observation_id: 5, timestamp: "2024-05-02T12:00:00Z", actor_entity_id: "a", kind: "page_edit", target_entity_id: "b" },
      { observation_id: 6, timestamp: "2024-01-01T12:00:00Z", actor_entity_id: "a", kind: "user_talk_edit", target_entity_id: "old" },
    ];
    const obsFile = tmp.join("obs.jsonl");
    writeFileSync(obsFile, `${obs.map((o) => JSON.stringify(o)).join("\n")}\n`);
    edgesFile = tmp.join("edges.json");
    unsignedFile = tmp.join("bundle.json");
    signedFile = tmp.join("signed.json");
    const keyDir = tmp.join("flow-keys");
    mkdirSync(keyDir);
    await linksOk(["keys", "gen", "--out-dir", keyDir]);
    keyFile = join(keyDir, "ed25519.key");
    await linksOk(["derive", "--observations", obsFile, "--out", edgesFile, "--graphml", tmp.join("edges.graphml")]);
  });

  test("derive writes edges sorted by (from, to) with weights log1p(count) as floats", () => {
    const text = readFileSync(edgesFile, "utf8");
    const edges = JSON.parse(text) as { from_entity_id: string; to_entity_id: string; weight: number; window_days: number }[];
    expect(edges.map((e) => [e.from_entity_id, e.to_entity_id])).toEqual([
      ["a", "b"],
      ["a", "c"],
      [odd, "a"],
    ]);
    expect(edges.map((e) => e.weight)).toEqual([Math.log1p(1), Math.log1p(2), Math.log1p(1)]);
    expect(text).toContain('"weight":0.6931471805599453');
    expect(text).toContain('"weight":1.0986122886681096');
    expect(edges.every((e) => e.window_days === 30)).toBe(true);
  });

  test("derive writes GraphML with XML-escaped ids", () => {
    const xml = readFileSync(tmp.join("edges.graphml"), "utf8");
    expect(xml).toStartWith('<?xml version="1.0" encoding="UTF-8"?>');
    expect(xml).toContain('<node id="b&lt;&amp;&quot;x"/>');
    expect(xml).toContain('source="b&lt;&amp;&quot;x" target="a"');
    expect(xml).not.toContain(odd);
    expect(xml).toContain('<data key="weight">0.6931471805599453</data>');
    expect(xml.match(/<edge /g)).toHaveLength(3);
  });

  test("claims build writes an unsigned bundle with a 32-hex bundle id", async () => {
    const r = await linksOk(["claims", "build", "--edges", edgesFile, "--issuer", "node-a", "--window-days", "30", "--out", unsignedFile]);
    const bundle = JSON.parse(readFileSync(unsignedFile, "utf8")) as {
      bundle_id: string;
      public_key: string | null;
      signature: string | null;
      issuer: string;
      claims: { subject: string; object: string; value: number; predicate: string; issuer: string }[];
    };
    expect(bundle.bundle_id).toMatch(/^[0-9a-f]{32}$/);
    expect(lastLine(r.stdout)).toBe(bundle.bundle_id);
    expect(bundle.public_key).toBeNull();
    expect(bundle.signature).toBeNull();
    expect(bundle.issuer).toBe("node-a");
    expect(bundle.claims.map((c) => [c.subject, c.object])).toEqual([["a", "b"], ["a", "c"], [odd, "a"]]);
    expect(bundle.claims.every((c) => c.predicate === "links.weighted_to" && c.issuer === "node-a")).toBe(true);
    // an unsigned bundle does not verify
    const v = await links(["claims", "verify", unsignedFile, "--json"]);
    expect(v.code).toBe(1);
    expect(json<{ code: string }>(v).code).toBe("unsigned_bundle");
  });

  test("claims sign makes a bundle that claims verify accepts", async () => {
    const r = await linksOk(["claims", "sign", unsignedFile, "--key", keyFile, "--out", signedFile]);
    const v = await links(["claims", "verify", signedFile]);
    expect(v.code).toBe(0);
    expect(v.stderr).toContain(`valid: bundle ${lastLine(r.stdout)}`);
  });

  test("claims verify refuses the signed bundle once a claim value is changed", async () => {
    const tampered = tmp.join("tampered.json");
    const text = readFileSync(signedFile, "utf8");
    expect(text).toContain("1.0986122886681096");
    writeFileSync(tampered, text.replace("1.0986122886681096", "2.5"));
    const r = await links(["claims", "verify", tampered, "--json"]);
    expect(r.code).toBe(1);
    expect(json<{ valid: boolean; code: string }>(r)).toMatchObject({ valid: false, code: "bundle_id_mismatch" });
  });
});

describe("villages and members", () => {
  test("create prints a 43-character URL-safe token alone on the last line of stdout", async () => {
    const r = await linksOk(["villages", "create", "v1", "Village One", "alice", ...D()]);
    const token = lastLine(r.stdout);
    tokens.push(token);
    expect(token).toMatch(TOKEN_RE);
    expect(r.stdout).toBe(`${token}\n`);
    expect(r.stderr).toContain("created village v1");
  });

  test("create refuses a village that already exists", async () => {
    const r = await links(["villages", "create", "v1", "Again", "bob", ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("village_exists");
    expect(r.stdout).toBe("");
    expect((await showVillage("v1")).name).toBe("Village One");
  });

  test("add-member accepts the roles admin, member and observer", async () => {
    for (const [id, role] of [["carol", "admin"], ["bob", "member"], ["olga", "observer"]] as const) {
      const r = await linksOk(["villages", "add-member", "v1", id, "--role", role, ...D()]);
      const token = lastLine(r.stdout);
      expect(token).toMatch(TOKEN_RE);
      tokens.push(token);
    }
    const list = await members("v1");
    expect(list.map((m) => [m.member_id, m.role, m.revoked])).toEqual([
      ["alice", "admin", false],
      ["carol", "admin", false],
      ["bob", "member", false],
      ["olga", "observer", false],
    ]);
  });

  test("add-member refuses an unknown role with a message naming the allowed ones", async () => {
    const r = await links(["villages", "add-member", "v1", "mallory", "--role", "superuser", ...D()]);
    expect([1, 2]).toContain(r.code);
    expect(r.stderr).toContain("superuser");
    expect(r.stderr).toMatch(/admin, member, observer/);
    expect((await members("v1")).some((m) => m.member_id === "mallory")).toBe(false);
  });

  test("add-member refuses a member id that is already live", async () => {
    const r = await links(["villages", "add-member", "v1", "bob", ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("member_exists");
  });

  test("members --json lists {member_id, role, added_at, revoked} and no hash or token", async () => {
    const r = await linksOk(["villages", "members", "v1", "--json", ...D()]);
    const list = json<Member[]>(r);
    for (const m of list) {
      expect(Object.keys(m).sort()).toEqual(["added_at", "member_id", "revoked", "role"]);
      expect(m.added_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/);
    }
    expect(r.stdout).not.toMatch(/[0-9a-f]{64}/);
    for (const t of tokens) expect(r.stdout).not.toContain(t);
  });

  test("revoke-member marks the member revoked", async () => {
    await linksOk(["villages", "revoke-member", "v1", "olga", "--reason", "left", ...D()]);
    expect((await members("v1")).find((m) => m.member_id === "olga")?.revoked).toBe(true);
    const again = await links(["villages", "revoke-member", "v1", "olga", ...D()]);
    expect(again.code).toBe(1);
    expect(errorCode(again.stderr)).toBe("member_revoked");
    const revocations = readJsonlFile<{ token_hash: string; reason: string }>(join(data, "villages/v1/revocations.jsonl"));
    expect(revocations.some((r) => r.reason === "left")).toBe(true);
  });

  test("rotate-token prints a new token, revokes the old one and keeps the member live", async () => {
    const oldToken = tokens[tokens.length - 2] as string; // bob's
    const r = await linksOk(["villages", "rotate-token", "v1", "bob", ...D()]);
    const token = lastLine(r.stdout);
    expect(token).toMatch(TOKEN_RE);
    expect(token).not.toBe(oldToken);
    tokens.push(token);
    const bob = (await members("v1")).find((m) => m.member_id === "bob");
    expect(bob).toMatchObject({ role: "member", revoked: false });
    const rows = readJsonlFile<{ member_id: string; token_hash: string }>(join(data, "villages/v1/members.jsonl"));
    expect(rows.filter((m) => m.member_id === "bob").map((m) => m.token_hash)).toEqual([sha256Hex(oldToken), sha256Hex(token)]);
    const revoked = readJsonlFile<{ token_hash: string }>(join(data, "villages/v1/revocations.jsonl")).map((x) => x.token_hash);
    expect(revoked).toContain(sha256Hex(oldToken));
    expect(revoked).not.toContain(sha256Hex(token));
  });

  test("show --json returns the village with the full default policy", async () => {
    const v = await showVillage("v1");
    expect(v.village_id).toBe("v1");
    expect(v.name).toBe("Village One");
    expect(v.policy).toEqual({
      visibility: "village",
      allowed_predicates: ["links.weighted_to"],
      max_window_days: 30,
      min_signature_alg: "Ed25519",
      allow_unverified: false,
      retention_days: 90,
      rate_limit_per_min: 60,
      issuer_allowlist: [],
      issuer_blocklist: [],
      issuer_id_allowlist: [],
      issuer_id_blocklist: [],
      require_issuer_allowlist: false,
      require_policy_signature: false,
      policy_signer_allowlist: [],
      policy_signature_threshold_m: 1,
      capabilities: {
        observer: { can_pull: true, can_push: false, can_manage: false },
        member: { can_pull: true, can_push: true, can_manage: false },
        admin: { can_pull: true, can_push: true, can_manage: true },
      },
    });
  });

  test("show of a village that does not exist exits 1 with village_not_found", async () => {
    const r = await links(["villages", "show", "nowhere", ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("village_not_found");
  });

  test("list --json lists the villages", async () => {
    await createVillage("v0");
    const list = json<{ village_id: string; name: string; visibility: string }[]>(await linksOk(["villages", "list", "--json", ...D()]));
    expect(list.map((v) => v.village_id)).toEqual(["v0", "v1"]);
    expect(list[1]).toMatchObject({ village_id: "v1", name: "Village One", visibility: "village" });
  });

  test("the member.add rows are in the audit log", async () => {
    const reasons = (await audit("v1")).filter((r) => r.action === "member.add").map((r) => r.reason);
    expect(reasons).toEqual(["alice as admin", "carol as admin", "bob as member", "olga as observer"]);
  });
});

describe("issuer allow and block lists", () => {
  const pubB64 = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
  const keyHash = sha256Hex(Buffer.from(pubB64, "base64"));

  beforeAll(async () => {
    await createVillage("lists");
  });

  test("allow-issuer-key with a base64 public key stores its sha256 key hash", async () => {
    await linksOk(["villages", "allow-issuer-key", "lists", pubB64, ...D()]);
    expect((await showVillage("lists")).policy.issuer_allowlist).toEqual([keyHash]);
    const again = await linksOk(["villages", "allow-issuer-key", "lists", keyHash, ...D()]);
    expect(again.stderr).toContain("nothing changed");
    expect((await showVillage("lists")).policy.issuer_allowlist).toEqual([keyHash]);
  });

  test("unallow-issuer-key removes it again", async () => {
    await linksOk(["villages", "unallow-issuer-key", "lists", pubB64, ...D()]);
    expect((await showVillage("lists")).policy.issuer_allowlist).toEqual([]);
  });

  test("block-issuer-key and unblock-issuer-key change the key blocklist", async () => {
    await linksOk(["villages", "block-issuer-key", "lists", pubB64, ...D()]);
    expect((await showVillage("lists")).policy.issuer_blocklist).toEqual([keyHash]);
    await linksOk(["villages", "unblock-issuer-key", "lists", keyHash, ...D()]);
    expect((await showVillage("lists")).policy.issuer_blocklist).toEqual([]);
  });

  test("allow-issuer-id and unallow-issuer-id change the issuer id allowlist", async () => {
    await linksOk(["villages", "allow-issuer-id", "lists", "node-a", ...D()]);
    expect((await showVillage("lists")).policy.issuer_id_allowlist).toEqual(["node-a"]);
    await linksOk(["villages", "unallow-issuer-id", "lists", "node-a", ...D()]);
    expect((await showVillage("lists")).policy.issuer_id_allowlist).toEqual([]);
  });

  test("block-issuer-id and unblock-issuer-id change the issuer id blocklist", async () => {
    await linksOk(["villages", "block-issuer-id", "lists", "spammer", ...D()]);
    expect((await showVillage("lists")).policy.issuer_id_blocklist).toEqual(["spammer"]);
    await linksOk(["villages", "unblock-issuer-id", "lists", "spammer", ...D()]);
    expect((await showVillage("lists")).policy.issuer_id_blocklist).toEqual([]);
  });

  test("a key that is neither base64 of 32 bytes nor a key hash is refused", async () => {
    const r = await links(["villages", "allow-issuer-key", "lists", "not-a-key", ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("invalid_public_key");
  });

  test("every list change is audited", async () => {
    const actions = (await audit("lists")).map((r) => r.action).filter((a) => a.startsWith("issuer."));
    expect(actions).toEqual([
      "issuer.allow", "issuer.unallow", "issuer.block", "issuer.unblock",
      "issuer.allow", "issuer.unallow", "issuer.block", "issuer.unblock",
    ]);
  });
});

describe("policy apply-local", () => {
  let keyFile: string;
  const history = () =>
    readJsonlFile<{ policy_hash: string; artifact: { signature?: string | null } | null; signers: string[]; source: string; signed?: boolean }>(
      join(data, "villages/pv/policy_history.jsonl"),
    );

  // village creation may itself record a genesis row and audit it: count what the tests add
  let historyAtStart = 0;
  let appliesAtStart = 0;
  const applies = async () => (await audit("pv")).filter((r) => r.action === "policy.apply");

  beforeAll(async () => {
    await createVillage("pv");
    historyAtStart = history().length;
    appliesAtStart = (await applies()).length;
    const dir = tmp.join("policy-keys");
    mkdirSync(dir);
    await linksOk(["keys", "gen", "--out-dir", dir]);
    keyFile = join(dir, "ed25519.key");
  });

  test("a plain policy is applied, recorded in policy_history.jsonl and audited as policy.apply", async () => {
    const policy = { ...(await showVillage("pv")).policy, max_window_days: 14 };
    const file = tmp.join("plain-policy.json");
    writeFileSync(file, JSON.stringify(policy, null, 2));
    const result = json<{ status: string; policy_hash: string }>(await linksOk(["policy", "apply-local", "pv", file, "--json", ...D()]));
    expect(result.status).toBe("applied");
    expect(result.policy_hash).toMatch(/^[0-9a-f]{64}$/);
    expect((await showVillage("pv")).policy.max_window_days).toBe(14);
    const rows = history();
    expect(rows).toHaveLength(historyAtStart + 1);
    const row = rows[rows.length - 1] as Record<string, unknown>;
    expect(row).toMatchObject({ policy: { max_window_days: 14 }, policy_hash: result.policy_hash, signers: [], source: "local" });
    if ("signed" in row) expect(row.signed).toBe(false);
    const applied = await applies();
    expect(applied).toHaveLength(appliesAtStart + 1);
    expect(applied[applied.length - 1]?.reason).toContain("unsigned");
  });

  let signedArtifact: string;

  test("a signed artifact from policy export and policy sign is applied with its signer", async () => {
    const changed = tmp.join("changed-policy.json");
    writeFileSync(changed, JSON.stringify({ ...(await showVillage("pv")).policy, max_window_days: 7 }));
    const artifact = tmp.join("artifact.json");
    signedArtifact = tmp.join("artifact.signed.json");
    await linksOk(["policy", "export", "pv", "--policy", changed, "--out", artifact, ...D()]);
    expect(JSON.parse(readFileSync(artifact, "utf8"))).toMatchObject({ village_id: "pv", signature: null, public_key: null });
    await linksOk(["policy", "sign", artifact, "--key", keyFile, "--out", signedArtifact]);
    const verify = json<{ valid: boolean; generation: string; signers: string[] }>(await linksOk(["policy", "verify", signedArtifact, "--json"]));
    expect(verify).toMatchObject({ valid: true, generation: "v2" });
    const result = json<{ status: string; policy_hash: string }>(await linksOk(["policy", "apply-local", "pv", signedArtifact, "--json", ...D()]));
    expect(result.status).toBe("applied");
    expect((await showVillage("pv")).policy.max_window_days).toBe(7);
    const rows = history();
    expect(rows).toHaveLength(historyAtStart + 2);
    expect(rows[rows.length - 1]?.policy_hash).toBe(result.policy_hash);
    expect(rows[rows.length - 1]?.signers).toEqual(verify.signers);
    expect(rows[rows.length - 1]?.artifact?.signature).toBe(JSON.parse(readFileSync(signedArtifact, "utf8")).signature);
    expect(rows[rows.length - 1]?.signed ?? true).toBe(true);
    expect(await applies()).toHaveLength(appliesAtStart + 2);
  });

  test("a tampered artifact is refused and changes nothing", async () => {
    const text = readFileSync(signedArtifact, "utf8");
    const before = readFileSync(join(data, "villages/pv/village.json"), "utf8");

    const otherActor = tmp.join("tampered-actor.json");
    writeFileSync(otherActor, text.replace(/"actor":"[^"]*"/, '"actor":"mallory"'));
    const r1 = await links(["policy", "apply-local", "pv", otherActor, ...D()]);
    expect(r1.code).toBe(1);
    expect(errorCode(r1.stderr)).toBe("invalid_signature");

    const otherPolicy = tmp.join("tampered-policy.json");
    writeFileSync(otherPolicy, text.replace('"max_window_days":7', '"max_window_days":365'));
    const r2 = await links(["policy", "apply-local", "pv", otherPolicy, ...D()]);
    expect(r2.code).toBe(1);
    expect(errorCode(r2.stderr)).toBe("policy_hash_mismatch");

    expect(readFileSync(join(data, "villages/pv/village.json"), "utf8")).toBe(before);
    expect(history()).toHaveLength(historyAtStart + 2);
    expect(await applies()).toHaveLength(appliesAtStart + 2);
  });

  test("an artifact made for another village is refused", async () => {
    const r = await links(["policy", "apply-local", "v1", signedArtifact, ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("village_mismatch");
  });
});

describe("ingest, quarantine, query, reindex and audit", () => {
  let keyFile: string;
  let accepted: { file: string; bundleId: string };
  let held: { file: string; bundleId: string };
  let spam: { file: string; bundleId: string };
  const indexFile = () => join(data, "store/index/claims.jsonl");
  const indexLines = () => readFileSync(indexFile(), "utf8").split("\n").filter((l) => l.length > 0);

  beforeAll(async () => {
    const dir = tmp.join("ingest-keys");
    mkdirSync(dir);
    await linksOk(["keys", "gen", "--out-dir", dir]);
    keyFile = join(dir, "ed25519.key");
    accepted = await signedBundleFile(tmp.path, "accepted", keyFile, { subject: "wikipedia:en:Alice" });
    held = await signedBundleFile(tmp.path, "held", keyFile, { predicate: "links.mentions", subject: "wikipedia:en:Carol" });
    spam = await signedBundleFile(tmp.path, "spam", keyFile, { predicate: "links.mentions", subject: "spam:1" });
  });

  test("a valid bundle is accepted into the village and indexed", async () => {
    const r = await linksOk(["claims", "ingest", accepted.file, "--village-id", "v1", "--json", ...D()]);
    expect(json(r)).toEqual({ bundle_id: accepted.bundleId, status: "accepted" });
    expect(existsSync(join(data, "store/bundles/v1", `${accepted.bundleId}.json`))).toBe(true);
    expect(indexLines().filter((l) => l.includes(accepted.bundleId))).toHaveLength(1);
  });

  test("ingesting the same bundle again is a duplicate that adds no index rows", async () => {
    const before = indexLines().length;
    const r = await linksOk(["claims", "ingest", accepted.file, "--village-id", "v1", "--json", ...D()]);
    expect(json(r)).toEqual({ bundle_id: accepted.bundleId, status: "duplicate" });
    expect(indexLines()).toHaveLength(before);
  });

  test("a bundle with a predicate the policy does not allow exits 3 and is quarantined", async () => {
    for (const b of [held, spam]) {
      const r = await links(["claims", "ingest", b.file, "--village-id", "v1", "--json", ...D()]);
      expect(r.code).toBe(3);
      expect(json(r)).toMatchObject({ bundle_id: b.bundleId, status: "quarantined", code: "predicate_not_allowed" });
    }
    const list = json<{ bundle_id: string; village_id: string; reason: string }[]>(await linksOk(["quarantine", "list", "--json", ...D()]));
    expect(list.map((e) => e.bundle_id).sort()).toEqual([held.bundleId, spam.bundleId].sort());
    expect(list.every((e) => e.village_id === "v1" && e.reason === "predicate_not_allowed")).toBe(true);
    expect(indexLines().some((l) => l.includes(held.bundleId))).toBe(false);
  });

  test("quarantine approve is refused while the policy still forbids the bundle", async () => {
    const r = await links(["quarantine", "approve", held.bundleId, ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("predicate_not_allowed");
    expect(r.stderr).toContain("still does not allow");
    expect(existsSync(join(data, "store/quarantine/v1", `${held.bundleId}.json`))).toBe(true);
    expect(existsSync(join(data, "store/bundles/v1", `${held.bundleId}.json`))).toBe(false);
  });

  test("after a policy change allowing the predicate, approve stores the bundle", async () => {
    const policy = (await showVillage("v1")).policy;
    const file = tmp.join("allow-mentions.json");
    writeFileSync(file, JSON.stringify({ ...policy, allowed_predicates: [...policy.allowed_predicates, "links.mentions"] }));
    await linksOk(["policy", "apply-local", "v1", file, ...D()]);
    const r = await linksOk(["quarantine", "approve", held.bundleId, ...D()]);
    expect(r.stderr).toContain(`approved ${held.bundleId} into v1`);
    expect(existsSync(join(data, "store/bundles/v1", `${held.bundleId}.json`))).toBe(true);
    expect(existsSync(join(data, "store/quarantine/v1", `${held.bundleId}.json`))).toBe(false);
    expect(existsSync(join(data, "store/quarantine/v1/meta", `${held.bundleId}.json`))).toBe(false);
    expect(indexLines().filter((l) => l.includes(held.bundleId))).toHaveLength(1);
  });

  test("quarantine reject moves the bundle to store/rejected/v1 with the reason", async () => {
    const r = await linksOk(["quarantine", "reject", spam.bundleId, "--reason", "spam", ...D()]);
    expect(r.stderr).toContain(`rejected ${spam.bundleId}`);
    const rejected = join(data, "store/rejected/v1", `${spam.bundleId}.json`);
    expect(readFileSync(rejected, "utf8")).toBe(readFileSync(spam.file, "utf8"));
    const meta = JSON.parse(readFileSync(join(data, "store/rejected/v1/meta", `${spam.bundleId}.json`), "utf8")) as Record<string, unknown>;
    expect(meta).toMatchObject({ rejection_reason: "spam", reason: "predicate_not_allowed" });
    expect(existsSync(join(data, "store/quarantine/v1", `${spam.bundleId}.json`))).toBe(false);
    expect(existsSync(join(data, "store/bundles/v1", `${spam.bundleId}.json`))).toBe(false);
    expect(json<unknown[]>(await linksOk(["quarantine", "list", "--json", ...D()]))).toEqual([]);
  });

  test("claims query --subject returns only that subject's rows, and --limit bounds them", async () => {
    const carol = json<IndexRow[]>(await linksOk(["claims", "query", "--subject", "wikipedia:en:Carol", "--json", ...D()]));
    expect(carol).toHaveLength(1);
    expect(carol[0]).toMatchObject({ bundle_id: held.bundleId, predicate: "links.mentions", village_id: "v1" });
    const all = json<IndexRow[]>(await linksOk(["claims", "query", "--json", ...D()]));
    expect(all.length).toBeGreaterThanOrEqual(2);
    const one = json<IndexRow[]>(await linksOk(["claims", "query", "--limit", "1", "--json", ...D()]));
    expect(one).toEqual(all.slice(0, 1));
    const none = await linksOk(["claims", "query", "--subject", "nobody", "--json", ...D()]);
    expect(json(none)).toEqual([]);
  });

  test("claims reindex rebuilds exactly the same index rows", async () => {
    const before = indexLines().sort();
    rmSync(indexFile());
    const r = json<{ bundles: number; rows: number; skipped: string[] }>(await linksOk(["claims", "reindex", "--json", ...D()]));
    expect(r.skipped).toEqual([]);
    expect(r.rows).toBe(before.length);
    expect(indexLines().sort()).toEqual(before);
  });

  test("audit tail --village-id shows every decision made in the village", async () => {
    const rows = await audit("v1");
    const actions = new Set(rows.map((r) => r.action));
    for (const a of ["village.create", "member.add", "member.revoke", "member.rotate", "ingest.accept", "ingest.quarantine", "quarantine.approve", "quarantine.reject", "policy.apply"]) {
      expect(actions).toContain(a);
    }
    expect(rows.every((r) => r.village_id === "v1")).toBe(true);
    expect(rows.find((r) => r.action === "quarantine.reject")).toMatchObject({ bundle_id: spam.bundleId, reason: "spam" });
    expect(rows.find((r) => r.action === "quarantine.approve")?.bundle_id).toBe(held.bundleId);
    const onlyIngest = json<AuditRow[]>(await linksOk(["audit", "tail", "--json", "--village-id", "v1", "--action", "ingest", ...D()]));
    expect(new Set(onlyIngest.map((r) => r.action))).toEqual(new Set(["ingest.accept", "ingest.quarantine"]));
    const last2 = json<AuditRow[]>(await linksOk(["audit", "tail", "--json", "--village-id", "v1", "--limit", "2", ...D()]));
    expect(last2).toEqual(rows.slice(-2));
  });

  test("no token ever reaches a file under the data directory; only its sha256 does", () => {
    expect(tokens.length).toBeGreaterThan(5);
    const files = listFiles(data).map((f) => readFileSync(join(data, f), "utf8"));
    for (const t of tokens) {
      for (const text of files) expect(text.includes(t)).toBe(false);
    }
    const ledger = listFiles(data)
      .filter((f) => f.endsWith("members.jsonl"))
      .map((f) => readFileSync(join(data, f), "utf8"))
      .join("");
    for (const t of tokens) expect(ledger).toContain(sha256Hex(t));
  });
});

describe("choosing the data directory", () => {
  test("--data and LINKS_DATA both select it, and --data wins over LINKS_DATA", async () => {
    const a = tmp.join("data-a");
    const b = tmp.join("data-b");
    await linksOk(["villages", "create", "by-env", "From env", "alice"], { env: { LINKS_DATA: a } });
    await linksOk(["villages", "create", "by-flag", "From flag", "alice", "--data", b]);
    const ids = async (args: string[], env?: Record<string, string>) =>
      json<{ village_id: string }[]>(await linksOk(["villages", "list", "--json", ...args], env ? { env } : {})).map((v) => v.village_id);
    expect(await ids(["--data", a])).toEqual(["by-env"]);
    expect(await ids([], { LINKS_DATA: b })).toEqual(["by-flag"]);
    expect(await ids(["--data", b], { LINKS_DATA: a })).toEqual(["by-flag"]);
  });

  test("without either, ./data under the working directory is used", async () => {
    const cwd = tmp.join("cwd-default");
    mkdirSync(cwd);
    await linksOk(["villages", "create", "here", "Here", "alice"], { cwd });
    expect(existsSync(join(cwd, "data/villages/here/village.json"))).toBe(true);
  });
});

/** Command names listed under COMMANDS in a --help text. */
function commandsIn(help: string): string[] {
  const after = help.split(/^COMMANDS$/m)[1];
  if (after === undefined) return [];
  return after
    .split(/\n\s*\n/)[1]
    ?.split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((name) => /^[a-z][a-z-]*$/.test(name)) ?? [];
}

describe("--help and --version", () => {
  test("links --version prints the version of package.json", async () => {
    const r = await linksOk(["--version"]);
    expect(r.stdout).toBe(`${pkg.version}\n`);
  });

  test("every group and every subcommand answers --help with exit 0 and a USAGE line", async () => {
    const root = await linksOk(["--help"]);
    expect(root.stdout).toMatch(/^USAGE links /m);
    const groups = commandsIn(root.stdout);
    expect(groups).toEqual(expect.arrayContaining(["serve", "villages", "keys", "claims", "derive", "policy", "quarantine", "sync", "audit"]));
    const paths: string[][] = [];
    for (const g of groups) {
      const r = await linksOk([g, "--help"]);
      expect(r.stdout).toMatch(new RegExp(`^USAGE links ${g}`, "m"));
      for (const sub of commandsIn(r.stdout)) paths.push([g, sub]);
    }
    expect(paths.length).toBeGreaterThan(30);
    const results = await Promise.all(paths.map((p) => links([...p, "--help"])));
    results.forEach((r, i) => {
      const p = (paths[i] as string[]).join(" ");
      expect({ p, code: r.code }).toEqual({ p, code: 0 });
      expect(r.stdout).toMatch(new RegExp(`^USAGE links ${p}`, "m"));
    });
  });

  test("an unknown command and an unknown option are usage errors (exit 2)", async () => {
    const r1 = await links(["villages", "frobnicate"]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain('unknown command "frobnicate"');
    const r2 = await links(["villages", "list", "--frobnicate", "--data", data]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('unknown option "--frobnicate"');
  });
});
