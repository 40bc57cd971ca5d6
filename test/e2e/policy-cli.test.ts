/**
 * The policy commands as an operator meets them, through the real binary: what `verify` exits
 * with, `sign-add` with a key that already signed, re-applying the policy in force, partial and
 * misspelt policies, which village is missing, what `export` writes, and a node whose
 * `policy/latest` never reads the policy history.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { policyHash } from "../../src/core/policy-update.ts";
import { errorCode, json, lastLine, links, linksOk, makeTempDir, readJsonlFile, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";

// each test runs several links processes: give them room on a busy 2-core machine
setDefaultTimeout(60_000);

const VID = "plaza";
let tmp: TempDir;
let data = "";
let keyA = "";
let keyB = "";
let hashA = "";
let hashB = "";
let token = "";
const D = () => ["--data", data];

const villageFile = () => join(data, "villages", VID, "village.json");
const historyFile = () => join(data, "villages", VID, "policy_history.jsonl");
const auditFile = () => join(data, "store/audit/audit.log.jsonl");
const policy = (): Record<string, unknown> => JSON.parse(readFileSync(villageFile(), "utf8")).policy;
const state = () => [villageFile(), historyFile(), auditFile()].map((f) => readFileSync(f, "utf8")).join("\n--\n");
let serial = 0;

function writeJson(value: unknown): string {
  const file = tmp.join(`f${++serial}.json`);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

/** An exported artifact of `changes` onto the current policy, signed with sign-add by `keys`. */
async function signedArtifact(changes: Record<string, unknown>, keys: string[], edit: (a: Record<string, unknown>) => void = () => {}): Promise<string> {
  const out = tmp.join(`a${++serial}.json`);
  await linksOk(["policy", "export", VID, "--policy", writeJson({ ...policy(), ...changes }), "--out", out, ...D()]);
  const artifact = JSON.parse(readFileSync(out, "utf8"));
  edit(artifact);
  writeFileSync(out, JSON.stringify(artifact));
  for (const k of keys) await linksOk(["policy", "sign-add", out, k, out]);
  return out;
}

beforeAll(async () => {
  tmp = makeTempDir("links-policy-cli-");
  data = tmp.join("data");
  token = lastLine((await linksOk(["villages", "create", VID, "Plaza", "alice", ...D()])).stdout);
  for (const name of ["a", "b"]) await linksOk(["keys", "gen", "--out-dir", tmp.join(name)]);
  keyA = tmp.join("a", "ed25519.key");
  keyB = tmp.join("b", "ed25519.key");
  hashA = lastLine((await linksOk(["keys", "hash", tmp.join("a", "ed25519.pub")])).stdout);
  hashB = lastLine((await linksOk(["keys", "hash", tmp.join("b", "ed25519.pub")])).stdout);
  const signedPolicy = { ...policy(), require_policy_signature: true, policy_signer_allowlist: [hashA, hashB], policy_signature_threshold_m: 2 };
  await linksOk(["policy", "apply-local", VID, writeJson(signedPolicy), ...D()]);
});

afterAll(() => tmp?.remove());

describe("policy verify", () => {
  test("documents its exit codes in --help", async () => {
    const help = await linksOk(["policy", "verify", "--help"]);
    for (const words of ["Exit 0 valid", "1 invalid", "4 valid but expired", "5 valid but not for --village-id"]) expect(help.stdout).toContain(words);
  });

  test("exits 0 for a valid update whose village quorum is met, 5 when it is not, 1 when it was altered", async () => {
    const both = await signedArtifact({ max_window_days: 9 }, [keyA, keyB]);
    const ok = await links(["policy", "verify", both, "--village-id", VID, "--json", ...D()]);
    expect(ok.code).toBe(0);
    expect(json(ok)).toMatchObject({ status: "valid", valid: true, expired: false, quorum: { met: true, required: 2 } });

    const one = await signedArtifact({ max_window_days: 9 }, [keyA]);
    expect((await links(["policy", "verify", one, ...D()])).code).toBe(0);
    const short = await links(["policy", "verify", one, "--village-id", VID, ...D()]);
    expect(short.code).toBe(5);
    expect(short.stderr).toContain("NOT met");

    const altered = tmp.join("altered.json");
    writeFileSync(altered, readFileSync(both, "utf8").replace('"max_window_days":9', '"max_window_days":90'));
    const bad = await links(["policy", "verify", altered, "--json"]);
    expect(bad.code).toBe(1);
    expect(json(bad)).toMatchObject({ status: "invalid", code: "policy_hash_mismatch" });
  });

  test("exits 4 for an expired update, even with its quorum met", async () => {
    const expired = await signedArtifact({ max_window_days: 8 }, [keyA, keyB], (a) => {
      a.expires_at = "2020-01-01T00:00:00Z";
    });
    const r = await links(["policy", "verify", expired, "--village-id", VID, "--json", ...D()]);
    expect(r.code).toBe(4);
    expect(json(r)).toMatchObject({ status: "expired", valid: true, expired: true });
  });

  test("exits 5 for an update made for another village", async () => {
    await linksOk(["villages", "create", "other", "Other", "alice", ...D()]);
    const both = await signedArtifact({ max_window_days: 9 }, [keyA, keyB]);
    const r = await links(["policy", "verify", both, "--village-id", "other", "--json", ...D()]);
    expect(r.code).toBe(5);
    expect(json(r)).toMatchObject({ status: "other_village" });
  });

  test("an update that hands the signer list to a new key is not 'met' until the new rules are met too (exit 5)", async () => {
    await linksOk(["keys", "gen", "--out-dir", tmp.join("c")]);
    const hashC = lastLine((await linksOk(["keys", "hash", tmp.join("c", "ed25519.pub")])).stdout);
    const swap = await signedArtifact({ policy_signer_allowlist: [hashC], policy_signature_threshold_m: 1 }, [keyA, keyB]);
    const r = await links(["policy", "verify", swap, "--village-id", VID, "--json", ...D()]);
    expect(r.code).toBe(5);
    expect(json(r)).toMatchObject({ status: "quorum_not_met", quorum: { met: false } });
    // what applying it answers, so verify's verdict is the village's
    expect(errorCode((await links(["policy", "apply-local", VID, swap, ...D()])).stderr)).toBe("policy_quorum_not_met");
    await linksOk(["policy", "sign-add", swap, tmp.join("c", "ed25519.key"), swap]);
    expect((await links(["policy", "verify", swap, "--village-id", VID, ...D()])).code).toBe(0);
  });

  test("names the other village with its control characters escaped", async () => {
    const hostile = await signedArtifact({ max_window_days: 9 }, [keyA, keyB], (a) => {
      a.village_id = "evil\u001b[2J\u009b31m\nlinks: forged line";
    });
    const r = await links(["policy", "verify", hostile, "--village-id", VID, ...D()]);
    expect(r.code).toBe(5);
    expect(r.stderr).not.toMatch(/[\u001b\u009b]/);
    expect(r.stderr).toContain('the artifact is for village "evil\\x1b[2J\\u009b31m\\nlinks: forged line", not plaza');
  });
});

describe("policy sign-add with a key that already signed", () => {
  test("is refused with policy_already_signed (exit 1) and leaves the file as it was", async () => {
    const file = await signedArtifact({ max_window_days: 11 }, [keyA]);
    const before = readFileSync(file, "utf8");
    const r = await links(["policy", "sign-add", file, keyA, file]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("policy_already_signed");
    expect(r.stderr).toContain(hashA);
    expect(readFileSync(file, "utf8")).toBe(before);
    // another key still adds its signature
    const added = await linksOk(["policy", "sign-add", file, keyB, file, "--json"]);
    expect(json(added)).toMatchObject({ status: "signed", key_hash: hashB, signers: [hashA, hashB] });
  });

  test("a key that signed at the top level (policy sign) counts as having signed", async () => {
    const out = tmp.join("legacy.json");
    await linksOk(["policy", "export", VID, "--out", out, ...D()]);
    await linksOk(["policy", "sign", out, "--key", keyA, "--out", out]);
    const before = readFileSync(out, "utf8");
    expect(errorCode((await links(["policy", "sign-add", out, keyA, out])).stderr)).toBe("policy_already_signed");
    expect(readFileSync(out, "utf8")).toBe(before);
  });
});

describe("policy apply-local", () => {
  test("the policy in force given again is 'unchanged': no history row, no audit row", async () => {
    const before = state();
    const r = await linksOk(["policy", "apply-local", VID, writeJson(policy()), "--json", ...D()]);
    expect(json(r)).toMatchObject({ status: "unchanged" });
    expect(state()).toBe(before);
    const text = await linksOk(["policy", "apply-local", VID, writeJson(policy()), ...D()]);
    expect(text.stderr).toContain("unchanged");
  });

  test("a signed artifact already in the chain is policy_replay, not 'unchanged'", async () => {
    const file = await signedArtifact({ max_window_days: 12 }, [keyA, keyB]);
    await linksOk(["policy", "apply-local", VID, file, ...D()]);
    const before = state();
    const r = await links(["policy", "apply-local", VID, file, ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("policy_replay");
    expect(state()).toBe(before);
  });

  test("a partial policy is refused naming what it leaves out; --merge sets only its fields", async () => {
    const before = state();
    const partial = writeJson({ max_window_days: 5 });
    const r = await links(["policy", "apply-local", VID, partial, ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("policy_incomplete");
    expect(r.stderr).toContain("policy_signer_allowlist");
    expect(r.stderr).toContain("--merge");
    expect(state()).toBe(before);

    await linksOk(["policy", "apply-local", VID, partial, "--merge", ...D()]);
    expect(policy()).toMatchObject({ max_window_days: 5, policy_signer_allowlist: [hashA, hashB], require_policy_signature: true });
  });

  test("--replace sets every field it leaves out to its default", async () => {
    const other = tmp.join("replace-data");
    await linksOk(["villages", "create", "r", "R", "alice", "--max-window-days", "3", "--data", other]);
    await linksOk(["policy", "apply-local", "r", writeJson({ retention_days: 7 }), "--replace", "--data", other]);
    const p = JSON.parse(readFileSync(join(other, "villages/r/village.json"), "utf8")).policy;
    expect(p).toMatchObject({ retention_days: 7, max_window_days: 30, policy_signer_allowlist: [] });
  });

  test("--merge with --replace, or with a signed artifact, is refused", async () => {
    expect(errorCode((await links(["policy", "apply-local", VID, writeJson({ max_window_days: 5 }), "--merge", "--replace", ...D()])).stderr)).toBe("invalid_argument");
    const file = await signedArtifact({ max_window_days: 13 }, [keyA, keyB]);
    expect(errorCode((await links(["policy", "apply-local", VID, file, "--merge", ...D()])).stderr)).toBe("invalid_argument");
  });

  test("a misspelt field is refused naming it; Python v0.15's fields are kept", async () => {
    const before = state();
    const r = await links(["policy", "apply-local", VID, writeJson({ ...policy(), max_windw_days: 7 }), ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("invalid_schema");
    expect(r.stderr).toContain("max_windw_days");
    expect(state()).toBe(before);
    await linksOk(["policy", "apply-local", VID, writeJson({ policy_quorum: null, rate_limit_strategy: "token" }), "--merge", ...D()]);
    expect(policy()).toMatchObject({ policy_quorum: null, rate_limit_strategy: "token" });
  });

  test("a policy that would lock the village out is refused naming why (policy_lockout), plain or signed", async () => {
    const before = state();
    const plain = await links(["policy", "apply-local", VID, writeJson({ rate_limit_per_min: 0 }), "--merge", ...D()]);
    expect(plain.code).toBe(1);
    expect(errorCode(plain.stderr)).toBe("policy_lockout");
    expect(plain.stderr).toContain("rate_limit_per_min");
    const signed = await links(["policy", "apply-local", VID, await signedArtifact({ capabilities: {} }, [keyA, keyB]), ...D()]);
    expect(signed.code).toBe(1);
    expect(errorCode(signed.stderr)).toBe("policy_lockout");
    expect(state()).toBe(before);
  });

  test("a signed artifact dated years ahead is refused (policy_future_dated) and the next honest one still applies", async () => {
    const before = state();
    const ahead = await signedArtifact({ max_window_days: 16 }, [keyA, keyB], (a) => {
      a.created_at = "2099-01-01T00:00:00Z";
    });
    const r = await links(["policy", "apply-local", VID, ahead, ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("policy_future_dated");
    expect(state()).toBe(before);
    await linksOk(["policy", "apply-local", VID, await signedArtifact({ max_window_days: 16 }, [keyA, keyB]), ...D()]);
  });

  test("a signed artifact's policy is kept exactly as signed, fields unknown here included", async () => {
    const file = await signedArtifact({ max_window_days: 15 }, [keyA, keyB], (a) => {
      const p = { ...(a.policy as Record<string, unknown>), future_field: { kept: true } };
      a.policy = p;
      a.policy_hash = policyHash(p as never);
      a.policy_version_id = a.policy_hash;
    });
    const r = await linksOk(["policy", "apply-local", VID, file, "--json", ...D()]);
    expect(json(r)).toMatchObject({ status: "applied" });
    expect(policy().future_field).toEqual({ kept: true });
    expect(readJsonlFile<{ signed: boolean }>(historyFile()).at(-1)?.signed).toBe(true);
  });
});

describe("policy export", () => {
  test("writes policy_version_id = policy_hash, as Python v0.15 does", async () => {
    const out = tmp.join("export.json");
    await linksOk(["policy", "export", VID, "--out", out, ...D()]);
    const a = JSON.parse(readFileSync(out, "utf8"));
    expect(a.policy_version_id).toBe(a.policy_hash);
  });

  test("--policy with a misspelt field is refused naming it", async () => {
    const r = await links(["policy", "export", VID, "--policy", writeJson({ ...policy(), allowed_predicate: [] }), "--out", tmp.join("x.json"), ...D()]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("invalid_schema");
    expect(r.stderr).toContain("allowed_predicate");
  });
});

describe("against a node", () => {
  let node: RunningNode;
  beforeAll(async () => {
    node = await startNode(data);
  });
  afterAll(async () => {
    await node?.stop();
  });

  test("a plain policy with a misspelt field over HTTP is 400 invalid_schema naming it", async () => {
    const open = tmp.join("open-data");
    const openToken = lastLine((await linksOk(["villages", "create", "open", "Open", "alice", "--data", open])).stdout);
    const openNode = await startNode(open);
    try {
      const current = JSON.parse(readFileSync(join(open, "villages/open/village.json"), "utf8")).policy;
      const r = await links(["policy", "apply-remote", openNode.url, "open", writeJson({ ...current, max_windw_days: 7 }), "--token", openToken]);
      expect(r.code).toBe(1);
      expect(errorCode(r.stderr)).toBe("invalid_schema");
      expect(r.stderr).toContain("max_windw_days");
      const same = await linksOk(["policy", "apply-remote", openNode.url, "open", writeJson(current), "--token", openToken, "--json"]);
      expect(json(same)).toMatchObject({ status: "unchanged" });
    } finally {
      await openNode.stop();
    }
  });

  test("a missing village is named as the local or the remote one", async () => {
    const empty = tmp.join("empty-data");
    await linksOk(["villages", "create", "elsewhere", "Elsewhere", "alice", "--data", empty]);
    const localMissing = await links(["policy", "pull", node.url, "nowhere", "--json", "--data", empty]);
    expect(json(localMissing)).toMatchObject({ code: "village_not_found", detail: expect.stringContaining("does not exist locally") });
    const driftLocal = await links(["policy", "drift", node.url, "nowhere", "--data", empty]);
    expect(driftLocal.stderr).toContain("does not exist locally");
    const remoteMissing = await links(["policy", "pull", node.url, "elsewhere", "--json", "--data", empty]);
    expect(json(remoteMissing)).toMatchObject({ code: "village_not_found", detail: `the node ${node.url} has no village "elsewhere"` });
    const driftRemote = await links(["policy", "drift", node.url, "elsewhere", "--data", empty]);
    expect(driftRemote.stderr).toContain(`the node ${node.url} has no village "elsewhere"`);
    const applyRemote = await links(["policy", "apply-remote", node.url, "elsewhere", writeJson(policy()), "--token", token]);
    expect(applyRemote.code).toBe(1);
    expect(applyRemote.stderr).toContain(`the node ${node.url} has no village "elsewhere"`);
  });
});

describe("policy/latest on a long history", () => {
  test("never reads the history: a corrupt early row is reported by the updates route, never by latest or its 304", async () => {
    const dir = tmp.join("long-data");
    await linksOk(["villages", "create", "long", "Long", "alice", "--data", dir]);
    const history = join(dir, "villages/long/policy_history.jsonl");
    // a row no reader can parse at the start of the history, then a big row and more changes
    writeFileSync(history, `{"policy": {"max_window_days": [[[\n${readFileSync(history, "utf8")}`);
    const current = JSON.parse(readFileSync(join(dir, "villages/long/village.json"), "utf8")).policy;
    await linksOk(["policy", "apply-local", "long", writeJson({ ...current, allowed_predicates: Array.from({ length: 20_000 }, (_, i) => `p.${i}`) }), "--data", dir]);
    for (const days of [4, 5, 6]) await linksOk(["policy", "apply-local", "long", writeJson({ ...current, max_window_days: days }), "--data", dir]);
    const longNode = await startNode(dir);
    try {
      let etag = "";
      for (let i = 0; i < 30; i++) {
        const res = await fetch(`${longNode.url}/villages/long/policy/latest`, { headers: i % 2 === 1 ? { "if-none-match": etag } : {} });
        expect(res.status).toBe(i % 2 === 1 ? 304 : 200);
        etag = res.headers.get("etag") ?? "";
        await res.arrayBuffer();
      }
      expect(longNode.log()).not.toContain("skipped");
      const updates = await fetch(`${longNode.url}/villages/long/policy/updates`);
      expect(updates.status).toBe(200);
      await updates.arrayBuffer();
      expect(longNode.log()).toContain("skipped corrupt line 1");
    } finally {
      await longNode.stop();
    }
    console.log("30 policy/latest requests (15 of them 304) on a history with a corrupt first row and a 20,000-predicate row: none read the history");
  });
});
