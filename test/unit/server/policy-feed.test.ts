/**
 * The policy feed: GET /villages/:id/policy/latest (ETag / If-None-Match) and
 * GET /villages/:id/policy/updates (since, limit, cursor), and who may read them.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync } from "node:fs";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import {
  addPolicySignature,
  newPolicyUpdate,
  policyHash,
  policyUpdateToJson,
  type PolicyUpdate,
} from "../../../src/core/policy-update.ts";
import { defaultPolicy, type PolicyObject, type VillagePolicy } from "../../../src/core/village-policy.ts";
import { addMember } from "../../../src/storage/members.ts";
import { applyPlainPolicy, recordGenesis } from "../../../src/storage/policy.ts";
import { readVillage } from "../../../src/storage/villages.ts";
import { decodeFeedCursor, encodeFeedCursor, etagMatches } from "../../../src/server/routes/policy-feed.ts";
import { json, keypair, makeNode, REMOTE, VID, type Keypair, type Node, type NodeOptions } from "./helpers.ts";

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

const signers = [keypair(), keypair()] as [Keypair, Keypair];
const guarded: Partial<VillagePolicy> = {
  require_policy_signature: true,
  policy_signer_allowlist: [signers[0].keyHash, signers[1].keyHash],
  policy_signature_threshold_m: 2,
};

const headOf = (n: Node): string => policyHash(readVillage(n.paths, VID).policy);
const latest = (n: Node, init: Parameters<Node["send"]>[2] = {}) => n.send("GET", `/villages/${VID}/policy/latest`, init);
const updates = (n: Node, query: string, init: Parameters<Node["send"]>[2] = {}) =>
  n.send("GET", `/villages/${VID}/policy/updates${query === "" ? "" : `?${query}`}`, init);

interface UpdatesPage {
  updates: Array<Record<string, unknown>>;
  next_cursor: string | null;
  head: string;
}

/** A village with a genesis entry and `n` signed updates applied through POST /policy. */
async function nodeWithChain(n: number, opts: NodeOptions = {}): Promise<{ node: Node; hashes: string[]; artifacts: PolicyUpdate[] }> {
  const made = makeNode({ ...opts, policy: { ...guarded, ...(opts.policy as object) } });
  recordGenesis(made.paths, readVillage(made.paths, VID), "test");
  const hashes = [headOf(made)];
  const artifacts: PolicyUpdate[] = [];
  for (let i = 0; i < n; i++) {
    const policy = { ...readVillage(made.paths, VID).policy, max_window_days: 10 + i } as PolicyObject;
    let update = newPolicyUpdate({ villageId: VID, policy, actor: "alice", previousPolicyHash: hashes[hashes.length - 1] as string });
    for (const k of signers) update = addPolicySignature(update, k.seed);
    const res = await made.send("POST", `/villages/${VID}/policy`, {
      token: made.tokens.admin,
      body: toJsonText(policyUpdateToJson(update)),
    });
    expect(res.status).toBe(200);
    hashes.push(update.policy_hash);
    artifacts.push(update);
  }
  return { node: made, hashes, artifacts };
}

describe("GET /villages/:id/policy/latest", () => {
  test("for a village without history it serves an unsigned artifact of the current policy, the same each time", async () => {
    node = makeNode();
    const res = await latest(node);
    expect(res.status).toBe(200);
    const body = await json(res);
    const village = readVillage(node.paths, VID);
    expect(body.policy_hash).toBe(policyHash(village.policy));
    expect(body.signed).toBe(false);
    expect(body.artifact).toMatchObject({
      village_id: VID,
      policy: village.policy,
      policy_hash: policyHash(village.policy),
      previous_policy_hash: null,
      signatures: [],
      signature: null,
      created_at: village.created_at,
    });
    expect(res.headers.get("etag")).toBe(`"${policyHash(village.policy)}"`);
    expect(await json(await latest(node))).toEqual(body);
  });

  test("after a signed update it serves that artifact as received (its fields, artifact and signed), with its hash as the ETag", async () => {
    const chain = await nodeWithChain(1);
    node = chain.node;
    const res = await latest(node);
    expect(res.status).toBe(200);
    const body = await json(res);
    const artifact = JSON.parse(toJsonText(policyUpdateToJson(chain.artifacts[0] as PolicyUpdate)));
    // the artifact's own fields at the top (what Python Links v0.15 reads), plus artifact and signed
    expect(body).toEqual({ ...artifact, policy_hash: chain.hashes[1], artifact, signed: true });
    expect(body.policy_hash).toBe(headOf(node));
    expect(res.headers.get("etag")).toBe(`"${chain.hashes[1]}"`);
    expect(res.headers.get("cache-control")).toBe("no-cache");
  });

  test.each([
    ["quoted", (h: string) => `"${h}"`],
    ["unquoted", (h: string) => h],
    ["weak", (h: string) => `W/"${h}"`],
    ["in a list", (h: string) => `"${"0".repeat(64)}", "${h}"`],
    ["a wildcard", (_h: string) => "*"],
  ])("an If-None-Match naming the head (%s) answers 304 with the ETag and no body", async (_name, header) => {
    node = makeNode();
    const head = headOf(node);
    const res = await latest(node, { headers: { "if-none-match": header(head) } });
    expect(res.status).toBe(304);
    expect(res.headers.get("etag")).toBe(`"${head}"`);
    expect(await res.text()).toBe("");
  });

  test("an If-None-Match naming an older head answers 200 with the new head", async () => {
    const chain = await nodeWithChain(1);
    node = chain.node;
    const res = await latest(node, { headers: { "if-none-match": `"${chain.hashes[0]}"` } });
    expect(res.status).toBe(200);
    expect((await json(res)).policy_hash).toBe(chain.hashes[1]);
  });

  test("the head is the hash of village.json's policy even when the last history row was never applied", async () => {
    const chain = await nodeWithChain(1);
    node = chain.node;
    // a history row whose village.json write failed: the village is still at hashes[1]
    const orphan = defaultPolicy({ ...guarded, max_window_days: 99 });
    appendFileSync(
      node.paths.policyHistoryFile(VID),
      `${toJsonText({ policy: orphan, policy_hash: policyHash(orphan), previous_policy_hash: chain.hashes[1] as string, actor: "x", ts: "2030-01-01T00:00:00Z", source: "local", signed: false, signers: [], artifact: null } as unknown as JsonValue)}\n`,
    );
    const body = await json(await latest(node));
    expect(body.policy_hash).toBe(chain.hashes[1]);
    expect(body.signed).toBe(true);
    const page = (await json(await updates(node, `since=${chain.hashes[0]}`))) as unknown as UpdatesPage;
    expect(page.updates.map((u) => u.policy_hash)).toEqual([chain.hashes[1]]);
  });

  test("a village that does not exist is 404 village_not_found; a bad id is 400", async () => {
    node = makeNode();
    const missing = await node.send("GET", "/villages/nowhere/policy/latest");
    expect(missing.status).toBe(404);
    expect(await json(missing)).toMatchObject({ code: "village_not_found" });
    const bad = await node.send("GET", "/villages/a.b/policy/latest");
    expect(bad.status).toBe(400);
    expect(await json(bad)).toMatchObject({ code: "invalid_village_id" });
  });

  test("POST is 405 with Allow: GET, HEAD", async () => {
    node = makeNode();
    const res = await node.send("POST", `/villages/${VID}/policy/latest`, { body: "{}" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
  });
});

describe("GET /villages/:id/policy/updates", () => {
  test("without since it answers the whole chain in order, genesis first", async () => {
    const chain = await nodeWithChain(2);
    node = chain.node;
    const page = (await json(await updates(node, ""))) as unknown as UpdatesPage;
    expect(page.updates.map((u) => u.policy_hash)).toEqual(chain.hashes);
    expect(page.next_cursor).toBeNull();
    expect(page.head).toBe(chain.hashes[2] as string);
    expect(page.updates[0]).toMatchObject({ previous_policy_hash: null, signatures: [] });
  });

  test("with since it answers the entries after it, each naming the one before", async () => {
    const chain = await nodeWithChain(3);
    node = chain.node;
    const page = (await json(await updates(node, `since=${chain.hashes[1]}`))) as unknown as UpdatesPage;
    expect(page.updates.map((u) => u.policy_hash)).toEqual(chain.hashes.slice(2));
    expect(page.updates.map((u) => u.previous_policy_hash)).toEqual(chain.hashes.slice(1, 3));
    expect(page.updates[0]).toEqual(JSON.parse(toJsonText(policyUpdateToJson(chain.artifacts[1] as PolicyUpdate))));
  });

  test("since = the head answers an empty list", async () => {
    const chain = await nodeWithChain(1);
    node = chain.node;
    const res = await updates(node, `since=${chain.hashes[1]}`);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ updates: [], next_cursor: null, head: chain.hashes[1] as string });
  });

  test("since = the head of a village without history answers an empty list", async () => {
    node = makeNode();
    const res = await updates(node, `since=${headOf(node)}`);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ updates: [], next_cursor: null, head: headOf(node) });
  });

  test("an unknown since is 404 unknown_policy_hash, not an empty list", async () => {
    const chain = await nodeWithChain(1);
    node = chain.node;
    const res = await updates(node, `since=${"ab".repeat(32)}`);
    expect(res.status).toBe(404);
    const body = await json(res);
    expect(body.code).toBe("unknown_policy_hash");
    expect(String(body.detail)).toContain("ab".repeat(32));
  });

  test("pages follow next_cursor to the end, in chain order, without repeats", async () => {
    const chain = await nodeWithChain(5);
    node = chain.node;
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = (await json(
        await updates(node, `since=${chain.hashes[0]}&limit=2${cursor ? `&cursor=${cursor}` : ""}`),
      )) as unknown as UpdatesPage;
      expect(page.updates.length).toBeLessThanOrEqual(2);
      seen.push(...page.updates.map((u) => String(u.policy_hash)));
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual(chain.hashes.slice(1));
  });

  test("a full last page has no next_cursor", async () => {
    const chain = await nodeWithChain(2);
    node = chain.node;
    const page = (await json(await updates(node, `since=${chain.hashes[0]}&limit=2`))) as unknown as UpdatesPage;
    expect(page.updates).toHaveLength(2);
    expect(page.next_cursor).toBeNull();
  });

  test.each([
    ["since=ABC", "invalid_argument", "since"],
    [`since=${"A".repeat(64)}`, "invalid_argument", "since"],
    [`since=${"a".repeat(63)}`, "invalid_argument", "since"],
    [`since=${"a".repeat(64)}&since=${"b".repeat(64)}`, "invalid_argument", "since"],
    ["limit=0", "invalid_argument", "limit"],
    ["limit=1001", "invalid_argument", "limit"],
    ["limit=-1", "invalid_argument", "limit"],
    ["limit=ten", "invalid_argument", "limit"],
    ["cursor=%2F%2F", "invalid_cursor", "cursor"],
    ["cursor=bm9wZQ", "invalid_cursor", "cursor"],
    [`cursor=${encodeFeedCursor(50)}`, "invalid_cursor", "cursor"],
  ])("%s is 400 %s", async (query, code, named) => {
    node = makeNode();
    const res = await updates(node, query);
    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.code).toBe(code);
    expect(String(body.detail)).toContain(named);
  });

  test("limit=1000 is accepted", async () => {
    node = makeNode();
    expect((await updates(node, "limit=1000")).status).toBe(200);
  });
});

describe("GET /villages/:id/policy/updates_page (Python Links v0.15's envelope)", () => {
  const page = (n: Node, query: string, init: Parameters<Node["send"]>[2] = {}) =>
    n.send("GET", `/villages/${VID}/policy/updates_page${query === "" ? "" : `?${query}`}`, init);

  test("answers the same entries as /updates, echoing since, cursor and limit", async () => {
    const chain = await nodeWithChain(3);
    node = chain.node;
    const first = await json(await page(node, `since=${chain.hashes[0]}&limit=2`));
    expect(Object.keys(first).sort()).toEqual(["cursor", "items", "limit", "next_cursor", "since", "village_id"]);
    expect(first).toMatchObject({ village_id: VID, since: chain.hashes[0], cursor: null, limit: 2 });
    const items = first.items as Array<Record<string, unknown>>;
    expect(items.map((u) => u.policy_hash)).toEqual(chain.hashes.slice(1, 3));
    const cursor = first.next_cursor as string;
    const second = await json(await page(node, `since=${chain.hashes[0]}&limit=2&cursor=${cursor}`));
    expect(second).toMatchObject({ cursor, limit: 2, next_cursor: null });
    expect((second.items as Array<Record<string, unknown>>).map((u) => u.policy_hash)).toEqual(chain.hashes.slice(3));
  });

  test("without a query: since and cursor null, limit 100, the whole chain", async () => {
    const chain = await nodeWithChain(1);
    node = chain.node;
    const body = await json(await page(node, ""));
    expect(body).toMatchObject({ since: null, cursor: null, limit: 100, next_cursor: null });
    expect((body.items as unknown[]).length).toBe(2);
  });

  test.each([["limit=0"], ["limit=501"], ["since=xyz"], ["cursor=nope!"]])("%s is 400", async (query) => {
    node = makeNode();
    expect((await page(node, query)).status).toBe(400);
  });

  test("a since the chain does not hold is 404 unknown_policy_hash (a v0.15 puller fails loudly)", async () => {
    node = makeNode();
    const res = await page(node, `since=${"ab".repeat(32)}`);
    expect(res.status).toBe(404);
    expect(await json(res)).toMatchObject({ code: "unknown_policy_hash" });
  });

  test("a private village needs the pull right here too", async () => {
    node = makeNode({ policy: { visibility: "private" } });
    expect((await page(node, "")).status).toBe(401);
    expect((await page(node, "", { token: node.tokens.observer })).status).toBe(200);
  });
});

describe("GET /villages/:id/policy/by_hash/:policy_hash", () => {
  const byHash = (n: Node, hash: string) => n.send("GET", `/villages/${VID}/policy/by_hash/${hash}`);

  test("answers the chain entry's artifact alone", async () => {
    const chain = await nodeWithChain(2);
    node = chain.node;
    const res = await byHash(node, chain.hashes[1] as string);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual(JSON.parse(toJsonText(policyUpdateToJson(chain.artifacts[0] as PolicyUpdate))));
  });

  test("a hash the chain does not hold is 404 with v0.15's detail", async () => {
    node = makeNode();
    const res = await byHash(node, "0".repeat(64));
    expect(res.status).toBe(404);
    expect(await json(res)).toEqual({ detail: "policy update not found", code: "policy_update_not_found" });
  });

  test.each([["ABC"], ["A".repeat(64)], ["a".repeat(65)]])("%s is 400 invalid_argument", async (hash) => {
    node = makeNode();
    const res = await byHash(node, hash);
    expect(res.status).toBe(400);
    expect(await json(res)).toMatchObject({ code: "invalid_argument" });
  });
});

describe("when the chain changes after it was served", () => {
  test("updates and by_hash answer the new entry at once", async () => {
    const chain = await nodeWithChain(1);
    node = chain.node;
    const next = defaultPolicy({ max_window_days: 12 });
    expect((await updates(node, "")).status).toBe(200);
    expect((await node.send("GET", `/villages/${VID}/policy/by_hash/${policyHash(next)}`)).status).toBe(404);
    // a plain change on the host (what apply-local records), while the node runs
    applyPlainPolicy(node.paths, VID, next, { actor: "op", source: "local" });
    const page = (await json(await updates(node, `since=${chain.hashes[1]}`))) as unknown as UpdatesPage;
    expect(page.updates.map((u) => u.policy_hash)).toEqual([policyHash(next)]);
    expect(page.head).toBe(policyHash(next));
    const found = await node.send("GET", `/villages/${VID}/policy/by_hash/${policyHash(next)}`);
    expect(found.status).toBe(200);
    expect(await json(found)).toMatchObject({ policy_hash: policyHash(next), previous_policy_hash: chain.hashes[1] });
  });
});

describe("who may read the feed", () => {
  test("a village that is not private is readable without a token, from any address", async () => {
    node = makeNode({ policy: { visibility: "village" } });
    expect((await latest(node, { ip: REMOTE })).status).toBe(200);
    expect((await updates(node, "", { ip: REMOTE })).status).toBe(200);
  });

  test("for a village that is not private the Authorization header is not looked at", async () => {
    node = makeNode({ policy: { visibility: "public" } });
    expect((await latest(node, { token: "not-a-token" })).status).toBe(200);
    expect((await latest(node, { token: node.tokens.revoked })).status).toBe(200);
  });

  describe("when the village is private", () => {
    test("no token is 401 missing_token with WWW-Authenticate", async () => {
      node = makeNode({ policy: { visibility: "private" } });
      for (const res of [await latest(node), await updates(node, "")]) {
        expect(res.status).toBe(401);
        expect(res.headers.get("www-authenticate")).toContain("Bearer");
        expect(await json(res)).toMatchObject({ code: "missing_token" });
      }
    });

    test("a revoked token is 401 revoked_token", async () => {
      node = makeNode({ policy: { visibility: "private" } });
      const res = await latest(node, { token: node.tokens.revoked });
      expect(res.status).toBe(401);
      expect(await json(res)).toMatchObject({ code: "revoked_token" });
    });

    test("a member whose role lacks the pull right is 403 forbidden", async () => {
      node = makeNode({
        policy: {
          visibility: "private",
          capabilities: { admin: { can_pull: true, can_push: true, can_manage: true }, observer: { can_pull: false, can_push: false, can_manage: false } },
        },
      });
      const res = await latest(node, { token: node.tokens.observer });
      expect(res.status).toBe(403);
      expect(await json(res)).toMatchObject({ code: "forbidden" });
    });

    test("a member with the pull right reads both routes, and the answer is marked private", async () => {
      node = makeNode({ policy: { visibility: "private" } });
      const res = await latest(node, { token: node.tokens.observer });
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("private, no-cache");
      expect((await updates(node, "", { token: node.tokens.observer })).status).toBe(200);
      const head = headOf(node);
      expect((await latest(node, { token: node.tokens.observer, headers: { "if-none-match": `"${head}"` } })).status).toBe(304);
    });

    test("requests count against the member's rate limit, not the address's", async () => {
      node = makeNode({ policy: { visibility: "private", rate_limit_per_min: 2 }, server: { publicRatePerMin: 1000 } });
      expect((await latest(node, { token: node.tokens.observer })).status).toBe(200);
      expect((await latest(node, { token: node.tokens.observer })).status).toBe(200);
      const limited = await latest(node, { token: node.tokens.observer });
      expect(limited.status).toBe(429);
      // another member has its own count
      const other = addMember(node.paths, VID, "oscar", "observer");
      expect((await latest(node, { token: other })).status).toBe(200);
    });
  });

  test("without a token the per-address public rate limit applies", async () => {
    node = makeNode({ server: { publicRatePerMin: 2 } });
    expect((await latest(node, { ip: REMOTE })).status).toBe(200);
    expect((await updates(node, "", { ip: REMOTE })).status).toBe(200);
    const limited = await latest(node, { ip: REMOTE });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).not.toBeNull();
    expect(await json(limited)).toMatchObject({ code: "rate_limited" });
    // another address is counted apart
    expect((await latest(node, { ip: "198.51.100.7" })).status).toBe(200);
  });
});

describe("the feed follows the village's policy changes", () => {
  test("an unsigned local change becomes the head, served as an unsigned artifact following the old head", async () => {
    node = makeNode();
    recordGenesis(node.paths, readVillage(node.paths, VID), "test");
    const before = headOf(node);
    const policy = defaultPolicy({ max_window_days: 3 });
    applyPlainPolicy(node.paths, VID, policy, { actor: "op", source: "local" });
    const body = await json(await latest(node, { headers: { "if-none-match": `"${before}"` } }));
    expect(body.policy_hash).toBe(policyHash(policy));
    expect(body.signed).toBe(false);
    expect(body.artifact).toMatchObject({ previous_policy_hash: before, policy, signatures: [] });
    const page = (await json(await updates(node, `since=${before}`))) as unknown as UpdatesPage;
    expect(page.updates.map((u) => u.policy_hash)).toEqual([policyHash(policy)]);
  });

  test("a policy with no history row after older rows gets an unsigned entry of its own", async () => {
    const chain = await nodeWithChain(1);
    node = chain.node;
    // village.json edited by hand (or by a tool that keeps no history)
    const file = node.paths.villageFile(VID);
    const village = JSON.parse(readFileSync(file, "utf8")) as { policy: Record<string, unknown> };
    village.policy = { ...village.policy, max_window_days: 77 };
    await Bun.write(file, JSON.stringify(village));
    const head = headOf(node);
    const page = (await json(await updates(node, `since=${chain.hashes[1]}`))) as unknown as UpdatesPage;
    expect(page.head).toBe(head);
    expect(page.updates).toHaveLength(1);
    expect(page.updates[0]).toMatchObject({ policy_hash: head, previous_policy_hash: chain.hashes[1], signatures: [] });
    expect((await json(await latest(node))).policy_hash).toBe(head);
  });
});

describe("a history written by Python Links", () => {
  test("a row's policy_hash is not trusted: the entry's hash is the hash of the policy the village took", async () => {
    node = makeNode({ policy: { max_window_days: 12 } });
    const taken = readVillage(node.paths, VID).policy;
    // Python stored the policy with its defaults filled in, beside the hash of the policy as sent
    const sent = { max_window_days: 12 };
    appendFileSync(
      node.paths.policyHistoryFile(VID),
      `${JSON.stringify({ policy: taken, policy_hash: policyHash(sent), actor: "alice", ts: "2026-11-25T20:14:23.030340Z" })}\n`,
    );
    const page = (await json(await updates(node, ""))) as unknown as UpdatesPage;
    expect(page.updates.map((u) => u.policy_hash)).toEqual([policyHash(taken)]);
    expect(page.head).toBe(policyHash(taken));
    expect(page.updates[0]).toMatchObject({ policy: taken, signatures: [], created_at: "2026-11-25T20:14:23.030340Z" });
    expect((await updates(node, `since=${policyHash(sent)}`)).status).toBe(404);
  });
});

describe("helpers", () => {
  test("cursors round-trip and refuse anything else", () => {
    for (const n of [0, 1, 99, 123456]) expect(decodeFeedCursor(encodeFeedCursor(n))).toBe(n);
    for (const bad of ["", "x", Buffer.from("c1:01").toString("base64url"), Buffer.from("o1:1").toString("base64url"), `${encodeFeedCursor(1)}=`]) {
      expect(() => decodeFeedCursor(bad)).toThrow();
    }
  });

  test("If-None-Match matching is exact on the tag", () => {
    const h = "a".repeat(64);
    expect(etagMatches(undefined, h)).toBe(false);
    expect(etagMatches(`"${h.slice(1)}"`, h)).toBe(false);
    expect(etagMatches(`"${h}x"`, h)).toBe(false);
    expect(etagMatches(`  "${h}"  `, h)).toBe(true);
  });
});

describe("large policies", () => {
  // about 200 KiB of predicates: under the 256 KiB policy limit
  const bigPolicy = (i: number): PolicyObject =>
    ({ ...defaultPolicy(), max_window_days: i + 1, allowed_predicates: Array.from({ length: 2000 }, (_, k) => `p${i}.${k}.${"x".repeat(90)}`) }) as PolicyObject;

  test("a policy over 256 KiB is 413 policy_too_large, plain or signed, and nothing is recorded", async () => {
    node = makeNode({ policy: guarded });
    const huge = { ...defaultPolicy(guarded), allowed_predicates: Array.from({ length: 3000 }, (_, k) => `p${k}.${"x".repeat(90)}`) } as PolicyObject;
    let update = newPolicyUpdate({ villageId: VID, policy: huge, actor: "alice", previousPolicyHash: headOf(node) });
    for (const k of signers) update = addPolicySignature(update, k.seed);
    const before = headOf(node);
    const res = await node.send("POST", `/villages/${VID}/policy`, { token: node.tokens.admin, body: toJsonText(policyUpdateToJson(update)) });
    expect(res.status).toBe(413);
    expect(await json(res)).toMatchObject({ code: "policy_too_large" });
    expect(() => applyPlainPolicy(node.paths, VID, { ...huge, require_policy_signature: false, policy_signer_allowlist: [] }, { actor: "root", source: "local" })).toThrow(
      expect.objectContaining({ code: "policy_too_large" }),
    );
    expect(headOf(node)).toBe(before);
  });

  test("a chain of large policies is served in pages of at most about 8 MiB, and all of it by following next_cursor", async () => {
    node = makeNode();
    for (let i = 0; i < 45; i++) applyPlainPolicy(node.paths, VID, bigPolicy(i), { actor: "root", source: "local" });
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await updates(node, `limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(text.length).toBeLessThan(9 * 1024 * 1024);
      const page = JSON.parse(text) as UpdatesPage;
      for (const u of page.updates) seen.push((u.policy as { max_window_days: number }).max_window_days);
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBeGreaterThan(1);
    expect(seen.slice(-45)).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
  });
});
