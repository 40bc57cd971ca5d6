import { afterEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import {
  addPolicySignature,
  newPolicyUpdate,
  policyHash,
  policyUpdateToJson,
  type PolicyUpdate,
} from "../../../src/core/policy-update.ts";
import { defaultPolicy, type PolicyObject, type VillagePolicy } from "../../../src/core/village-policy.ts";
import { tailAudit } from "../../../src/storage/audit.ts";
import { readPolicyHistory } from "../../../src/storage/policy.ts";
import { readVillage } from "../../../src/storage/villages.ts";
import { keypair, makeNode, signedBundle, VID, type Keypair, type Node } from "./helpers.ts";

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

const text = (v: unknown): string => toJsonText(v as JsonValue);

async function quarantine(n: Node, predicate: string): Promise<string> {
  const bundle = signedBundle(n.key, { predicate });
  const res = await n.send("POST", `/villages/${VID}/inbox`, { token: n.tokens.member, body: text(bundle) });
  expect(res.status).toBe(202);
  return bundle.bundle_id;
}

describe("quarantine review", () => {
  test("only a member with the manage right may list it", async () => {
    node = makeNode();
    const res = await node.send("GET", `/villages/${VID}/quarantine`, { token: node.tokens.member });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "forbidden" });
  });

  test("the list shows why, when and who, and no file path of the host", async () => {
    node = makeNode();
    const bid = await quarantine(node, "links.mentions");
    const res = await node.send("GET", `/villages/${VID}/quarantine`, { token: node.tokens.admin });
    expect(res.status).toBe(200);
    const { entries } = (await res.json()) as { entries: Array<Record<string, unknown>> };
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ bundle_id: bid, village_id: VID, reason: "predicate_not_allowed", actor: "bob" });
    expect(entries[0]).not.toHaveProperty("file");
    expect(JSON.stringify(entries)).not.toContain(node.dataDir);
  });

  test("approval is refused with the policy's reason while the policy still forbids the bundle", async () => {
    node = makeNode();
    const bid = await quarantine(node, "links.mentions");
    const res = await node.send("POST", `/villages/${VID}/quarantine/${bid}/approve`, { token: node.tokens.admin });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ code: "predicate_not_allowed" });
    expect(existsSync(node.paths.quarantineFile(VID, bid))).toBe(true);
  });

  test("after a policy change through POST /villages/:id/policy the approval stores the bundle", async () => {
    node = makeNode();
    const bid = await quarantine(node, "links.mentions");
    const policy = defaultPolicy({ allowed_predicates: ["links.weighted_to", "links.mentions"] });
    const changed = await node.send("POST", `/villages/${VID}/policy`, { token: node.tokens.admin, body: text(policy) });
    expect(changed.status).toBe(200);
    expect(await changed.json()).toEqual({ status: "applied", policy_hash: policyHash(policy) });

    const res = await node.send("POST", `/villages/${VID}/quarantine/${bid}/approve`, { token: node.tokens.admin });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "approved", bundle_id: bid });
    expect(existsSync(node.paths.bundleFile(bid, VID))).toBe(true);
    expect(existsSync(node.paths.quarantineFile(VID, bid))).toBe(false);
    expect(tailAudit(node.paths, { action: "quarantine.approve" })).toMatchObject([{ bundle_id: bid, actor: "alice" }]);
  });

  test("approving a bundle that is not in quarantine is 404 bundle_not_found, without the host's paths", async () => {
    node = makeNode();
    const res = await node.send("POST", `/villages/${VID}/quarantine/${"a".repeat(32)}/approve`, { token: node.tokens.admin });
    expect(res.status).toBe(404);
    const answer = (await res.json()) as { code: string; detail: string };
    expect(answer.code).toBe("bundle_not_found");
    expect(answer.detail).not.toContain(node.dataDir);
  });

  test("reject moves the bundle to store/rejected with the reason", async () => {
    node = makeNode();
    const bid = await quarantine(node, "links.mentions");
    const res = await node.send("POST", `/villages/${VID}/quarantine/${bid}/reject`, {
      token: node.tokens.admin,
      body: { reason: "spam" },
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "rejected", bundle_id: bid });
    expect(existsSync(node.paths.quarantineFile(VID, bid))).toBe(false);
    expect(existsSync(node.paths.rejectedFile(VID, bid))).toBe(true);
    expect(tailAudit(node.paths, { action: "quarantine.reject" })).toMatchObject([{ bundle_id: bid, reason: "spam" }]);
  });

  test("reject also takes a body without a Content-Type", async () => {
    node = makeNode();
    const bid = await quarantine(node, "links.mentions");
    const res = await node.send("POST", `/villages/${VID}/quarantine/${bid}/reject`, { token: node.tokens.admin, body: '{"reason":"dup"}' });
    expect(res.status).toBe(200);
  });

  test.each([
    ["{}", "invalid_schema", "reason"],
    ['{"reason": 5}', "invalid_schema", "reason"],
    ['{"reason": ""}', "invalid_schema", "reason"],
    ['{"reason": ', "invalid_json", "offset"],
    ["[]", "invalid_schema", "(root)"],
  ])("a reject body %p is 400 %p naming %p", async (raw, code, named) => {
    node = makeNode();
    const bid = await quarantine(node, "links.mentions");
    const res = await node.send("POST", `/villages/${VID}/quarantine/${bid}/reject`, { token: node.tokens.admin, body: raw });
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { code: string; detail: string };
    expect(answer.code).toBe(code);
    expect(answer.detail).toContain(named);
    expect(existsSync(node.paths.quarantineFile(VID, bid))).toBe(true);
  });
});

describe("POST /villages/:id/policy", () => {
  const signers = [keypair(), keypair(), keypair()] as [Keypair, Keypair, Keypair];
  const guarded = (): Partial<VillagePolicy> => ({
    require_policy_signature: true,
    policy_signer_allowlist: [signers[0].keyHash, signers[1].keyHash],
    policy_signature_threshold_m: 2,
  });
  const nextPolicy = (extra: Partial<VillagePolicy> = {}): PolicyObject =>
    defaultPolicy({ ...guarded(), allowed_predicates: ["links.weighted_to", "links.mentions"], ...extra });

  function artifact(policy: PolicyObject, by: Keypair[], fields: Partial<Record<string, unknown>> = {}): PolicyUpdate {
    let update = { ...newPolicyUpdate({ villageId: VID, policy, actor: "alice" }), ...fields } as PolicyUpdate;
    for (const k of by) update = addPolicySignature(update, k.seed);
    return update;
  }
  const post = (n: Node, update: PolicyUpdate | PolicyObject, token = n.tokens.admin) =>
    n.send("POST", `/villages/${VID}/policy`, {
      token,
      body: text("policy_hash" in update ? policyUpdateToJson(update as PolicyUpdate) : update),
    });

  test("a member without the manage right is refused", async () => {
    node = makeNode();
    const res = await post(node, defaultPolicy(), node.tokens.member);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "forbidden" });
  });

  test("a signed update with the quorum is applied, with its signers in the history", async () => {
    node = makeNode({ policy: guarded() });
    const policy = nextPolicy();
    const res = await post(node, artifact(policy, [signers[0], signers[1]]));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "applied", policy_hash: policyHash(policy) });
    expect(readVillage(node.paths, VID).policy).toEqual(policy);
    const history = readPolicyHistory(node.paths, VID);
    expect(history.at(-1)).toMatchObject({ actor: "alice", source: "remote", policy_hash: policyHash(policy) });
    expect(history.at(-1)?.signers.sort()).toEqual([signers[0].keyHash, signers[1].keyHash].sort());
  });

  test("a signed update below the quorum is 403 policy_quorum_not_met and changes nothing", async () => {
    node = makeNode({ policy: guarded() });
    const before = readVillage(node.paths, VID).policy;
    const res = await post(node, artifact(nextPolicy(), [signers[0], signers[2]]));
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "policy_quorum_not_met" });
    expect(readVillage(node.paths, VID).policy).toEqual(before);
  });

  test("an update for another village is 400 village_mismatch", async () => {
    node = makeNode({ policy: guarded() });
    const res = await post(node, artifact(nextPolicy(), [signers[0], signers[1]], { village_id: "south-field" }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "village_mismatch" });
  });

  test("an expired update is 409 policy_expired", async () => {
    node = makeNode({ policy: guarded() });
    const res = await post(node, artifact(nextPolicy(), [signers[0], signers[1]], { expires_at: "2029-12-31T23:59:59Z" }));
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: "policy_expired" });
  });

  test("an update that does not expire before now is applied", async () => {
    node = makeNode({ policy: guarded() });
    const res = await post(node, artifact(nextPolicy(), [signers[0], signers[1]], { expires_at: "2030-01-02T00:00:00Z" }));
    expect(res.status).toBe(200);
  });

  test("a tampered policy is 400 policy_hash_mismatch", async () => {
    node = makeNode({ policy: guarded() });
    const signed = artifact(nextPolicy(), [signers[0], signers[1]]);
    const res = await post(node, { ...signed, policy: nextPolicy({ max_window_days: 365 }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "policy_hash_mismatch" });
  });

  test("a tampered field outside the policy is 400 invalid_signature", async () => {
    node = makeNode({ policy: guarded() });
    const signed = artifact(nextPolicy(), [signers[0], signers[1]]);
    const res = await post(node, { ...signed, actor: "mallory" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_signature" });
  });

  test("an update built on another policy than the one in force is 409 policy_lineage", async () => {
    node = makeNode({ policy: guarded() });
    const res = await post(node, artifact(nextPolicy(), [signers[0], signers[1]], { previous_policy_hash: "0".repeat(64) }));
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: "policy_lineage" });
  });

  test("a plain policy is refused with 403 policy_signature_required when signatures are required", async () => {
    node = makeNode({ policy: guarded() });
    const res = await post(node, nextPolicy({ require_policy_signature: false, policy_signer_allowlist: [] }));
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "policy_signature_required" });
  });

  test("a plain policy is refused too when the village names policy signers", async () => {
    node = makeNode({ policy: { policy_signer_allowlist: [signers[0].keyHash] } });
    const res = await post(node, defaultPolicy());
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "policy_signature_required" });
  });

  test("a plain policy with a bad field is 400 invalid_schema naming it", async () => {
    node = makeNode();
    const res = await post(node, { ...defaultPolicy(), max_window_days: "thirty" } as unknown as PolicyObject);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { code: string; detail: string };
    expect(answer.code).toBe("invalid_schema");
    expect(answer.detail).toContain("max_window_days");
  });

  test.each([["[]"], ["42"], ['"policy"'], ["null"]])("a body %p that is not an object is 400 invalid_schema", async (raw) => {
    node = makeNode();
    const res = await node.send("POST", `/villages/${VID}/policy`, { token: node.tokens.admin, body: raw });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_schema" });
  });

  test("the same signed update twice is 409 policy_replay the second time, and changes nothing", async () => {
    node = makeNode({ policy: guarded() });
    const update = artifact(nextPolicy(), [signers[0], signers[1]]);
    expect((await post(node, update)).status).toBe(200);
    const history = readPolicyHistory(node.paths, VID).length;
    const again = await post(node, addPolicySignature(update, signers[2].seed));
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ code: "policy_replay" });
    expect(readPolicyHistory(node.paths, VID)).toHaveLength(history);
  });

  test("an update not newer than the newest in the chain is 409 policy_rollback", async () => {
    node = makeNode({ policy: guarded() });
    const first = artifact(nextPolicy(), [signers[0], signers[1]], { created_at: "2029-06-01T00:00:00Z" });
    expect((await post(node, first)).status).toBe(200);
    const older = artifact(nextPolicy({ max_window_days: 3 }), [signers[0], signers[1]], { created_at: "2029-05-01T00:00:00Z", previous_policy_hash: first.policy_hash });
    const res = await post(node, older);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: "policy_rollback" });
    expect(readVillage(node.paths, VID).policy).toEqual(first.policy);
  });

  test("the policy in force posted again is 200 unchanged, with no history or audit row", async () => {
    node = makeNode();
    const current = readVillage(node.paths, VID).policy;
    const res = await post(node, current);
    expect(await res.json()).toEqual({ status: "unchanged", policy_hash: policyHash(current) });
    expect(readPolicyHistory(node.paths, VID)).toHaveLength(0);
    expect(tailAudit(node.paths, { action: "policy.apply" })).toEqual([]);
  });

  test("a plain policy with a field that is neither ours nor Python v0.15's is 400 invalid_schema naming it", async () => {
    node = makeNode();
    const res = await post(node, { ...defaultPolicy(), max_windw_days: 7 } as unknown as PolicyObject);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { code: string; detail: string };
    expect(answer.code).toBe("invalid_schema");
    expect(answer.detail).toContain("max_windw_days");
    expect((await post(node, { ...defaultPolicy(), submission_quota_per_day: 10 } as unknown as PolicyObject)).status).toBe(200);
  });

  test("an applied policy is audited with the member as actor", async () => {
    node = makeNode();
    await post(node, defaultPolicy({ max_window_days: 14 }));
    expect(tailAudit(node.paths, { action: "policy.apply" })).toMatchObject([{ village_id: VID, actor: "alice" }]);
  });
});
