/**
 * Attacks on what decides a village's policy: signed updates over HTTP, plain policies from an
 * admin, a hostile node answering `policy pull`, and quarantine approval after the policy moved.
 * Each test plays the attacker for real (HTTP against the app, real signatures, a real peer on a
 * loopback port) and checks what must happen instead.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { JsonFloat, toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { encodeBase64 } from "../../../src/core/base64.ts";
import { publicKeyFromSeed, sign } from "../../../src/core/ed25519.ts";
import { formatInstant } from "../../../src/core/datetime.ts";
import {
  addPolicySignature,
  newPolicyUpdate,
  policyHash,
  policySignedBytes,
  policyUpdateToJson,
  type PolicyUpdate,
} from "../../../src/core/policy-update.ts";
import { defaultPolicy, type PolicyObject, type VillagePolicy } from "../../../src/core/village-policy.ts";
import { pullPolicy } from "../../../src/client/policy-pull.ts";
import { Remote } from "../../../src/client/remote.ts";
import { applyPlainPolicy, readPolicyHistory } from "../../../src/storage/policy.ts";
import { readVillage } from "../../../src/storage/villages.ts";
import { FIXED_NOW, json, keypair, makeNode, signedBundle, VID, type Keypair, type Node } from "./helpers.ts";

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

const text = (v: unknown): string => toJsonText(v as JsonValue);
const at = (ms: number): string => formatInstant({ epochSeconds: Math.floor(ms / 1000), micros: 0 });
const MINUTE = 60_000;

const signers = [keypair(), keypair(), keypair()] as [Keypair, Keypair, Keypair];
const guarded = (extra: Partial<VillagePolicy> = {}): Partial<VillagePolicy> => ({
  require_policy_signature: true,
  policy_signer_allowlist: [signers[0].keyHash, signers[1].keyHash],
  policy_signature_threshold_m: 2,
  ...extra,
});
const policyOf = (extra: Partial<VillagePolicy> | Record<string, unknown> = {}): PolicyObject =>
  ({ ...defaultPolicy(guarded()), ...extra }) as PolicyObject;

function artifact(n: Node, policy: PolicyObject, by: Keypair[], fields: Record<string, unknown> = {}): PolicyUpdate {
  const previous = policyHash(readVillage(n.paths, VID).policy);
  let update = { ...newPolicyUpdate({ villageId: VID, policy, actor: "alice", previousPolicyHash: previous, createdAt: at(FIXED_NOW - 60 * MINUTE) }), ...fields } as PolicyUpdate;
  for (const k of by) update = addPolicySignature(update, k.seed);
  return update;
}

const post = (n: Node, body: PolicyUpdate | PolicyObject, token = n.tokens.admin) =>
  n.send("POST", `/villages/${VID}/policy`, { token, body: text("policy_hash" in body ? policyUpdateToJson(body as PolicyUpdate) : body) });

async function refused(res: Response, status: number, code: string): Promise<void> {
  const body = await json(res);
  expect({ status: res.status, code: body.code }).toEqual({ status, code });
}

describe("a signed update dated in the future", () => {
  test("is refused, so it cannot make every later update a rollback", async () => {
    node = makeNode({ policy: guarded() });
    const before = readVillage(node.paths, VID).policy;
    const future = artifact(node, policyOf({ max_window_days: 7 }), signers.slice(0, 2), { created_at: "2099-01-01T00:00:00Z" });
    await refused(await post(node, future), 409, "policy_future_dated");
    expect(readVillage(node.paths, VID).policy).toEqual(before);
    // the honest update of today still goes through
    const honest = artifact(node, policyOf({ max_window_days: 9 }), signers.slice(0, 2));
    expect((await post(node, honest)).status).toBe(200);
  });

  test("a few minutes ahead (clock skew between hosts) is still taken", async () => {
    node = makeNode({ policy: guarded() });
    const skewed = artifact(node, policyOf({ max_window_days: 7 }), signers.slice(0, 2), { created_at: at(FIXED_NOW + 2 * MINUTE) });
    expect((await post(node, skewed)).status).toBe(200);
  });
});

describe("a replay in another spelling", () => {
  test("the applied update re-sent with its time as +00:00 with microseconds, escaped strings and spaces is policy_replay", async () => {
    node = makeNode({ policy: guarded() });
    const u = artifact(node, policyOf({ max_window_days: 7 }), signers.slice(0, 2), { created_at: "2029-12-31T11:00:00.500000Z" });
    expect((await post(node, u)).status).toBe(200);
    const respelled = JSON.stringify({ ...policyUpdateToJson(u) as object, created_at: "2029-12-31T11:00:00.500000+00:00" }, null, 1)
      .replace('"village_id"', '"\\u0076illage_id"');
    const res = await node.send("POST", `/villages/${VID}/policy`, { token: node.tokens.admin, body: respelled });
    await refused(res, 409, "policy_replay");
  });
});

describe("quorum cannot be met by one signer counted twice", () => {
  test("the same key as the top-level signature and in signatures[] counts once", async () => {
    node = makeNode({ policy: guarded() });
    let u = artifact(node, policyOf({ max_window_days: 7 }), [signers[0]]);
    const sig = encodeBase64(sign(policySignedBytes(u), signers[0].seed));
    u = { ...u, public_key: encodeBase64(publicKeyFromSeed(signers[0].seed)), signature: sig };
    await refused(await post(node, u), 403, "policy_quorum_not_met");
  });

  test("the same key in a second base64 spelling (non-zero unused bits) does not count as another signer", async () => {
    node = makeNode({ policy: guarded() });
    const u = artifact(node, policyOf({ max_window_days: 7 }), [signers[0]]);
    const entry = u.signatures[0] as { public_key: string; signature: string; alg: string };
    const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // 32 bytes: 43 characters and "=", the last one carrying 2 unused bits
    const last = B64.indexOf(entry.public_key[42] as string);
    const respelled = `${entry.public_key.slice(0, 42)}${B64[last | 1]}=`;
    expect(Buffer.from(respelled, "base64").equals(Buffer.from(entry.public_key, "base64"))).toBe(true);
    const twice = { ...u, signatures: [entry, { ...entry, public_key: respelled }] };
    await refused(await post(node, twice), 403, "policy_quorum_not_met");
  });

  test("an update that installs new signers, signed only by them, is refused", async () => {
    node = makeNode({ policy: guarded() });
    const swap = policyOf({ policy_signer_allowlist: [signers[2].keyHash], policy_signature_threshold_m: 1 });
    await refused(await post(node, artifact(node, swap, [signers[2]])), 403, "policy_quorum_not_met");
  });

  test("an update that lowers the threshold, signed by one current signer, is refused", async () => {
    node = makeNode({ policy: guarded() });
    const lower = policyOf({ policy_signature_threshold_m: 1 });
    await refused(await post(node, artifact(node, lower, [signers[0]])), 403, "policy_quorum_not_met");
  });
});

describe("only a live member with the manage right of this village changes the policy", () => {
  test.each([
    ["observer", 403, "forbidden"],
    ["member", 403, "forbidden"],
    ["revoked", 401, "revoked_token"],
  ] as const)("a %s token is %d %s", async (role, status, code) => {
    node = makeNode();
    await refused(await post(node, defaultPolicy({ max_window_days: 3 }), node.tokens[role]), status, code);
  });

  test("an admin token of another node's village is 401 invalid_token", async () => {
    node = makeNode();
    const other = makeNode();
    try {
      await refused(await post(node, defaultPolicy({ max_window_days: 3 }), other.tokens.admin), 401, "invalid_token");
    } finally {
      await other.cleanup();
    }
  });
});

/** Policies that, once in force, leave no way to change the policy again over HTTP, or refuse every member. */
const lockouts: Array<[string, Record<string, unknown>]> = [
  ["signed updates required with no signer", { require_policy_signature: true, policy_signer_allowlist: [] }],
  ["a threshold above the number of signers", { policy_signer_allowlist: [signers[0].keyHash], policy_signature_threshold_m: 2 }],
  ["a threshold met only by listing one signer twice", { policy_signer_allowlist: [signers[0].keyHash, signers[0].keyHash], policy_signature_threshold_m: 2 }],
  ["no role with the manage right", { capabilities: { admin: { can_pull: true, can_push: true, can_manage: false }, member: { can_pull: true, can_push: true, can_manage: false } } }],
  ["no capabilities at all", { capabilities: {} }],
  ["a rate limit of 0", { rate_limit_per_min: 0 }],
];

describe("a policy that would lock the village out", () => {
  test.each(lockouts)("plain over HTTP: %s is 400 policy_lockout, and the village still answers", async (_what, extra) => {
    node = makeNode();
    const before = readVillage(node.paths, VID).policy;
    await refused(await post(node, { ...defaultPolicy(), ...extra } as PolicyObject), 400, "policy_lockout");
    expect(readVillage(node.paths, VID).policy).toEqual(before);
    expect((await post(node, defaultPolicy({ max_window_days: 3 }))).status).toBe(200);
  });

  test.each(lockouts)("plain on the host (apply-local): %s is refused", (_what, extra) => {
    node = makeNode();
    expect(() => applyPlainPolicy(node.paths, VID, { ...defaultPolicy(), ...extra } as PolicyObject, { actor: "op", source: "local" })).toThrow(
      expect.objectContaining({ code: "policy_lockout" }),
    );
  });

  test.each(lockouts.filter(([w]) => !w.startsWith("signed updates") && !w.startsWith("a threshold")))(
    "signed by the full quorum: %s is 400 policy_lockout",
    async (_what, extra) => {
      node = makeNode({ policy: guarded() });
      const before = readPolicyHistory(node.paths, VID).length;
      await refused(await post(node, artifact(node, policyOf(extra), signers.slice(0, 2))), 400, "policy_lockout");
      expect(readPolicyHistory(node.paths, VID)).toHaveLength(before);
    },
  );

  test("a signed update to a village without signed policy cannot require signatures with no signer", async () => {
    node = makeNode();
    const u = artifact(node, { ...defaultPolicy(), require_policy_signature: true } as PolicyObject, [signers[2]]);
    await refused(await post(node, u), 400, "policy_lockout");
  });
});

describe("a hostile node answering policy pull", () => {
  function hostile(updates: PolicyUpdate[]) {
    const head = updates.at(-1)?.policy_hash as string;
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path.endsWith("/policy/latest")) return Response.json({ policy_hash: head }, { headers: { etag: `"${head}"` } });
        if (path.endsWith("/policy/updates")) return Response.json({ updates: updates.map(policyUpdateToJson), next_cursor: null, head });
        return Response.json({ detail: "no", code: "not_found" }, { status: 404 });
      },
    });
    return { remote: new Remote({ baseUrl: `http://127.0.0.1:${server.port}`, timeoutMs: 5000 }), stop: () => server.stop(true) };
  }

  async function pullRefused(updates: PolicyUpdate[], code: string): Promise<void> {
    const before = readVillage(node.paths, VID).policy;
    const peer = hostile(updates);
    try {
      await expect(pullPolicy(peer.remote, node.paths, VID, { apply: true, now: FIXED_NOW })).rejects.toMatchObject({ code });
    } finally {
      peer.stop();
    }
    expect(readVillage(node.paths, VID).policy).toEqual(before);
  }

  test("a quorum-signed update dated years ahead is refused and nothing is applied", async () => {
    node = makeNode({ policy: guarded() });
    await pullRefused([artifact(node, policyOf({ max_window_days: 7 }), signers.slice(0, 2), { created_at: "2099-01-01T00:00:00Z" })], "policy_future_dated");
  });

  test("a quorum-signed update that sets a rate limit of 0 is refused", async () => {
    node = makeNode({ policy: guarded() });
    await pullRefused([artifact(node, policyOf({ rate_limit_per_min: 0 }), signers.slice(0, 2))], "policy_lockout");
  });

  test("a run whose second update has the same parent as the first (a fork) is refused whole", async () => {
    node = makeNode({ policy: guarded() });
    const a = artifact(node, policyOf({ max_window_days: 7 }), signers.slice(0, 2));
    const b = artifact(node, policyOf({ max_window_days: 8 }), signers.slice(0, 2), { created_at: at(FIXED_NOW - 30 * MINUTE) });
    await pullRefused([a, b], "policy_lineage");
  });
});

describe("quarantine approval decides on the policy in force at approval", () => {
  async function hold(n: Node): Promise<string> {
    const bundle = signedBundle(n.key, { predicate: "links.mentions", windowDays: 20 });
    const res = await n.send("POST", `/villages/${VID}/inbox`, { token: n.tokens.member, body: text(bundle) });
    expect(res.status).toBe(202);
    return bundle.bundle_id;
  }
  const approve = (n: Node, bid: string) => n.send("POST", `/villages/${VID}/quarantine/${bid}/approve`, { token: n.tokens.admin });
  const predicates = ["links.weighted_to", "links.mentions"];

  test.each([
    ["the issuer key is blocked", (n: Node) => ({ issuer_blocklist: [n.key.keyHash] }), "issuer_key_blocked"],
    ["an issuer key allowlist is required", () => ({ require_issuer_allowlist: true }), "issuer_key_not_allowed"],
    ["the issuer id is blocked", () => ({ issuer_id_blocklist: ["issuer-a"] }), "issuer_id_blocked"],
    ["the window allowed shrank", () => ({ max_window_days: 10 }), "window_too_large"],
  ] as const)("the predicate is allowed now but %s: refused, and the bundle stays held", async (_what, change, code) => {
    node = makeNode();
    const bid = await hold(node);
    expect((await post(node, defaultPolicy({ allowed_predicates: predicates, ...change(node) }))).status).toBe(200);
    await refused(await approve(node, bid), 422, code);
    const list = await node.send("GET", `/villages/${VID}/quarantine`, { token: node.tokens.admin });
    expect({ status: list.status, held: ((await json(list)).entries as Array<{ bundle_id: string }> | undefined)?.map((e) => e.bundle_id) }).toEqual({ status: 200, held: [bid] });
  });

  test("a manager demoted between hold and approval can no longer approve", async () => {
    node = makeNode();
    const bid = await hold(node);
    const caps = { admin: { can_pull: true, can_push: true, can_manage: false }, member: { can_pull: true, can_push: true, can_manage: true } };
    expect((await post(node, defaultPolicy({ allowed_predicates: predicates, max_window_days: 30, capabilities: caps }))).status).toBe(200);
    await refused(await approve(node, bid), 403, "forbidden");
  });
});

describe("Python v0.15's quorum models are enforced, not only carried", () => {
  // Before, a v0.15 village whose policy_quorum asked for weight or roles took an update from any
  // one allowlisted signer (policy_signature_threshold_m left at 1), where a Python node refuses it.
  const [a, b, c] = signers;
  const models = {
    weighted: guarded({
      policy_signer_allowlist: [a.keyHash, b.keyHash, c.keyHash],
      policy_signature_threshold_m: 1,
      policy_quorum: { model: "weighted", threshold_weight: 2 },
      policy_signer_weights: { [a.keyHash]: 1, [b.keyHash]: 1, [c.keyHash]: new JsonFloat(0.5) },
    }),
    role_based: guarded({
      policy_signer_allowlist: [a.keyHash, b.keyHash, c.keyHash],
      policy_signature_threshold_m: 1,
      policy_quorum: { model: "role_based", role_requirements: [{ role: "core", min_signers: 1 }, { role: "external", min_signers: 1 }] },
      policy_signer_roles: { [a.keyHash]: ["core"], [b.keyHash]: ["core"], [c.keyHash]: ["external"] },
    }),
    unknown: guarded({ policy_signature_threshold_m: 1, policy_quorum: { model: "majority" } }),
  };
  const next = (model: keyof typeof models) => ({ ...defaultPolicy(models[model]), max_window_days: 7 }) as PolicyObject;

  test("weighted: one signer, or a light second one, is short of the weight; two full weights pass", async () => {
    node = makeNode({ policy: models.weighted });
    await refused(await post(node, artifact(node, next("weighted"), [a])), 403, "policy_quorum_not_met");
    const light = await post(node, artifact(node, next("weighted"), [a, c]));
    expect(await json(light)).toMatchObject({ code: "policy_quorum_not_met", detail: expect.stringContaining("weight 1.5 of 2") });
    expect((await post(node, artifact(node, next("weighted"), [a, b]))).status).toBe(200);
  });

  test("role_based: two signers of one role miss the other role; one of each passes", async () => {
    node = makeNode({ policy: models.role_based });
    const oneRole = await post(node, artifact(node, next("role_based"), [a, b]));
    expect(await json(oneRole)).toMatchObject({ code: "policy_quorum_not_met", detail: expect.stringContaining("external 0 of 1") });
    expect((await post(node, artifact(node, next("role_based"), [a, c]))).status).toBe(200);
  });

  test("a model this node does not know is met by nobody, and says which", async () => {
    node = makeNode({ policy: models.unknown });
    const res = await post(node, artifact(node, next("unknown"), [a, b]));
    expect(await json(res)).toMatchObject({ code: "policy_quorum_not_met", detail: expect.stringContaining('"majority"') });
  });

  test("an update that raises the weight it needs must already carry the new weight", async () => {
    node = makeNode({ policy: models.weighted });
    const raised = { ...next("weighted"), policy_quorum: { model: "weighted", threshold_weight: new JsonFloat(2.5) } } as PolicyObject;
    const res = await post(node, artifact(node, raised, [a, b]));
    expect(await json(res)).toMatchObject({ code: "policy_quorum_not_met", detail: expect.stringContaining("new policy") });
    expect((await post(node, artifact(node, raised, [a, b, c]))).status).toBe(200);
  });
});
