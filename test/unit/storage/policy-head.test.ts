/**
 * The policy chain's memory (villages/<id>/policy_chain/): kept up to date by every write, equal
 * to what a rebuild from the history gives, rebuilt when the history changed behind its back,
 * and enough for the feed's head without reading the history.
 */
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { addPolicySignature, newPolicyUpdate, policyHash, policyPayloadHash, type PolicyUpdate } from "../../../src/core/policy-update.ts";
import { defaultPolicy } from "../../../src/core/village-policy.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { applyPlainPolicy, applyPolicyRun, applySignedUpdate, checkPolicyRun, policyChain, recordGenesis } from "../../../src/storage/policy.ts";
import { chainState, currentHead, payloadCount, readFreshHead } from "../../../src/storage/policy-head.ts";
import { publishedChain, publishedHead } from "../../../src/storage/policy-published.ts";
import { createVillage, readVillage } from "../../../src/storage/villages.ts";

const VID = "commons";
const seed = generateSeed();
const signer = sha256Hex(publicKeyFromSeed(seed));
const guarded = { require_policy_signature: true, policy_signer_allowlist: [signer], policy_signature_threshold_m: 1 };

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function setup(): DataPaths {
  dir = mkdtempSync(join(tmpdir(), "links-policy-head-"));
  const paths = new DataPaths(join(dir, "data"));
  const village = createVillage(paths, { villageId: VID, name: "Commons", adminId: "alice", policy: guarded });
  recordGenesis(paths, village, "test");
  return paths;
}

const head = (paths: DataPaths) => policyHash(readVillage(paths, VID).policy);
let serial = 0;

function signedNext(paths: DataPaths, extra: Record<string, unknown> = {}): PolicyUpdate {
  const policy = { ...readVillage(paths, VID).policy, max_window_days: 10 + ++serial, ...extra };
  return addPolicySignature(newPolicyUpdate({ villageId: VID, policy, actor: "alice", previousPolicyHash: head(paths), createdAt: `2029-01-01T00:00:${String(serial).padStart(2, "0")}Z` }), seed);
}

const headFile = (paths: DataPaths) => join(paths.policyChainDir(VID), "head.json");

describe("when policies are applied", () => {
  test("the memory follows every write and equals a rebuild from the history", () => {
    const paths = setup();
    const u1 = signedNext(paths);
    applySignedUpdate(paths, VID, u1, { actor: "alice", source: "local", now: Date.UTC(2030, 0, 1) });
    applyPlainPolicy(paths, VID, defaultPolicy({ ...guarded, max_window_days: 5 }), { actor: "op", source: "local" });
    const u2 = signedNext(paths);
    applyPolicyRun(paths, VID, [u2], { actor: "pull:x", now: Date.UTC(2030, 0, 1) });

    const kept = readFreshHead(paths, VID);
    expect(kept).toMatchObject({ entries: 4, newest_artifact_at: u2.created_at });
    expect(kept?.last?.policy_hash).toBe(head(paths));
    expect(payloadCount(paths, VID)).toBe(2);

    rmSync(paths.policyChainDir(VID), { recursive: true });
    expect(readFreshHead(paths, VID)).toBeNull();
    expect(currentHead(paths, VID)).toEqual(kept as NonNullable<typeof kept>);
    expect(payloadCount(paths, VID)).toBe(2);
  });

  test("the last entry it keeps is the one the whole chain publishes", () => {
    const paths = setup();
    applyPlainPolicy(paths, VID, defaultPolicy({ ...guarded, max_window_days: 5 }), { actor: "op", source: "local" });
    applySignedUpdate(paths, VID, signedNext(paths), { actor: "alice", source: "remote", now: Date.UTC(2030, 0, 1) });
    applyPlainPolicy(paths, VID, defaultPolicy({ ...guarded, max_window_days: 6 }), { actor: "op", source: "local" });
    const chain = policyChain(paths, VID);
    expect(readFreshHead(paths, VID)?.last).toEqual(chain.at(-1) as NonNullable<ReturnType<typeof chain.at>>);
    expect(publishedHead(paths, readVillage(paths, VID))).toEqual(publishedChain(paths, readVillage(paths, VID)).at(-1) as never);
  });

  test("an unchanged plain policy writes nothing", () => {
    const paths = setup();
    const history = readFileSync(paths.policyHistoryFile(VID), "utf8");
    const memory = readFileSync(headFile(paths), "utf8");
    const r = applyPlainPolicy(paths, VID, readVillage(paths, VID).policy, { actor: "op", source: "local" });
    expect(r.status).toBe("unchanged");
    expect(readFileSync(paths.policyHistoryFile(VID), "utf8")).toBe(history);
    expect(readFileSync(headFile(paths), "utf8")).toBe(memory);
  });

  test("a refused update writes nothing, memory included", () => {
    const paths = setup();
    const u1 = signedNext(paths);
    applySignedUpdate(paths, VID, u1, { actor: "alice", source: "local", now: Date.UTC(2030, 0, 1) });
    const memory = readFileSync(headFile(paths), "utf8");
    expect(() => applySignedUpdate(paths, VID, addPolicySignature(u1, generateSeed()), { actor: "alice", source: "local", now: Date.UTC(2030, 0, 1) })).toThrow(/already in this village's policy chain/);
    expect(readFileSync(headFile(paths), "utf8")).toBe(memory);
  });
});

describe("when the history changed behind the memory's back", () => {
  test("a row appended by Python Links makes it stale, and it is rebuilt with that row", () => {
    const paths = setup();
    applySignedUpdate(paths, VID, signedNext(paths), { actor: "alice", source: "local", now: Date.UTC(2030, 0, 1) });
    const python = defaultPolicy({ ...guarded, max_window_days: 3 });
    appendFileSync(paths.policyHistoryFile(VID), `${JSON.stringify({ policy: python, actor: "alice", ts: "2029-06-01T00:00:00Z" })}\n`);
    expect(readFreshHead(paths, VID)).toBeNull();
    const memory = currentHead(paths, VID);
    expect(memory.entries).toBe(3);
    expect(memory.last?.policy_hash).toBe(policyHash(python));
    expect(memory.last?.signed).toBe(false);
  });

  test("a corrupt head.json is rebuilt, not trusted", () => {
    const paths = setup();
    const u1 = signedNext(paths);
    applySignedUpdate(paths, VID, u1, { actor: "alice", source: "local", now: Date.UTC(2030, 0, 1) });
    writeFileSync(headFile(paths), "{not json");
    expect(currentHead(paths, VID).newest_artifact_at).toBe(u1.created_at);
    expect(chainState(paths, readVillage(paths, VID), currentHead(paths, VID)).hasPayload(policyPayloadHash(u1))).toBe(true);
  });

  test("a payload marker with no row behind it is dropped by the rebuild", () => {
    const paths = setup();
    applySignedUpdate(paths, VID, signedNext(paths), { actor: "alice", source: "local", now: Date.UTC(2030, 0, 1) });
    const stray = "ab".repeat(32);
    writeFileSync(join(paths.policyChainDir(VID), "payloads", stray), "");
    rmSync(headFile(paths));
    const state = chainState(paths, readVillage(paths, VID), currentHead(paths, VID));
    expect(state.hasPayload(stray)).toBe(false);
    expect(existsSync(join(paths.policyChainDir(VID), "payloads", stray))).toBe(false);
  });

  test("a marker that cannot be looked up is a storage error, not \"not in the chain\": a replay is never let through", () => {
    const paths = setup();
    const u1 = signedNext(paths);
    applySignedUpdate(paths, VID, u1, { actor: "alice", source: "local", now: Date.UTC(2030, 0, 1) });
    // the payloads folder replaced by a file: every lookup fails with ENOTDIR
    const payloads = join(paths.policyChainDir(VID), "payloads");
    rmSync(payloads, { recursive: true });
    writeFileSync(payloads, "");
    const state = chainState(paths, readVillage(paths, VID), currentHead(paths, VID));
    expect(() => state.hasPayload(policyPayloadHash(u1))).toThrow(expect.objectContaining({ code: "storage_error" }));
  });
});

describe("the feed's head", () => {
  test("is read without reading the history: a corrupt early row is never parsed again", () => {
    const paths = setup();
    // an early row no reader can parse, then a long history after it
    const file = paths.policyHistoryFile(VID);
    writeFileSync(file, `{"policy": {"max_window_days": [[[\n${readFileSync(file, "utf8")}`);
    for (let i = 0; i < 5; i++) applyPlainPolicy(paths, VID, defaultPolicy({ ...guarded, max_window_days: 40 + i }), { actor: "op", source: "local" });
    const warnings = spyOn(process.stderr, "write");
    try {
      for (let i = 0; i < 20; i++) {
        expect(publishedHead(paths, readVillage(paths, VID)).policy_hash).toBe(head(paths));
      }
      expect(warnings.mock.calls.filter((c) => String(c[0]).includes("skipped"))).toEqual([]);
      // the whole chain (the updates route) still reads, and warns
      publishedChain(paths, readVillage(paths, VID));
      expect(warnings.mock.calls.filter((c) => String(c[0]).includes("skipped corrupt line 1"))).toHaveLength(1);
    } finally {
      warnings.mockRestore();
    }
  });

  test("while village.json still holds the policy from before the last write, the entry before it is served", () => {
    const paths = setup();
    const village = readVillage(paths, VID);
    const before = publishedHead(paths, village);
    applyPlainPolicy(paths, VID, defaultPolicy({ ...guarded, max_window_days: 8 }), { actor: "op", source: "local" });
    // `village` is the village as a reader saw it just before the write landed
    expect(publishedHead(paths, village)).toEqual(before);
  });

  test("a village made by Python Links, with no history, gets an unsigned entry from its own created_at", () => {
    dir = mkdtempSync(join(tmpdir(), "links-policy-head-"));
    const paths = new DataPaths(join(dir, "data"));
    const village = createVillage(paths, { villageId: VID, name: "Commons", adminId: "alice" });
    const entry = publishedHead(paths, village);
    expect(entry).toMatchObject({ policy_hash: policyHash(village.policy), signed: false, previous_policy_hash: null });
    expect((entry.artifact as { created_at: string }).created_at).toBe(village.created_at);
    expect(publishedHead(paths, village)).toEqual(entry);
  });
});

describe("the published chain", () => {
  const corruptFirstRow = (paths: DataPaths) => {
    const file = paths.policyHistoryFile(VID);
    writeFileSync(file, `{"policy": {"max_window_days": [[[\n${readFileSync(file, "utf8")}`);
  };
  const skipped = (calls: unknown[][]) => calls.filter((c) => String(c[0]).includes("skipped corrupt line 1")).length;

  test("is read once per village version and history size: asking again does not read the history", () => {
    const paths = setup();
    applyPlainPolicy(paths, VID, defaultPolicy({ ...guarded, max_window_days: 7 }), { actor: "op", source: "local" });
    corruptFirstRow(paths);
    const warnings = spyOn(process.stderr, "write");
    try {
      const first = publishedChain(paths, readVillage(paths, VID));
      for (let i = 0; i < 5; i++) expect(publishedChain(paths, readVillage(paths, VID))).toEqual(first);
      expect(skipped(warnings.mock.calls)).toBe(1);
      // a new policy is a new village version: read again, and the new head is there
      applyPlainPolicy(paths, VID, defaultPolicy({ ...guarded, max_window_days: 8 }), { actor: "op", source: "local" });
      const reads = skipped(warnings.mock.calls);
      expect(publishedChain(paths, readVillage(paths, VID)).at(-1)?.policy_hash).toBe(head(paths));
      expect(skipped(warnings.mock.calls)).toBe(reads + 1);
    } finally {
      warnings.mockRestore();
    }
  });

  test("a row appended behind the village's back (Python Links, village.json unchanged) is seen at the next read", () => {
    const paths = setup();
    const village = readVillage(paths, VID);
    const before = publishedChain(paths, village);
    // Python Links v0.7 writes the policy in force again, as a row with no artifact
    const row = { policy: village.policy, policy_hash: head(paths), previous_policy_hash: head(paths), actor: "py", ts: "2031-01-01T00:00:00Z" };
    appendFileSync(paths.policyHistoryFile(VID), `${JSON.stringify(row)}\n`);
    expect(readVillage(paths, VID)).toBe(village);
    const after = publishedChain(paths, village);
    expect(after).toHaveLength(before.length + 1);
    expect((after.at(-1)?.artifact as { created_at: string }).created_at).toBe("2031-01-01T00:00:00Z");
  });
});

describe("a pulled run", () => {
  test("is decided again under the lock: what changed since the pre-check is seen", () => {
    const paths = setup();
    const u1 = signedNext(paths);
    const now = Date.UTC(2030, 0, 1);
    expect(checkPolicyRun(paths, VID, [u1], { now })).toHaveLength(1);
    // between the pre-check and the apply, the same update arrives another way
    applySignedUpdate(paths, VID, u1, { actor: "alice", source: "remote", now });
    const history = readFileSync(paths.policyHistoryFile(VID), "utf8");
    expect(() => applyPolicyRun(paths, VID, [u1], { actor: "pull:x", now })).toThrow(/already in this village's policy chain/);
    expect(readFileSync(paths.policyHistoryFile(VID), "utf8")).toBe(history);
  });
});
