/**
 * One sync pass against a real peer over real HTTP: bundles through the village's pipeline, the
 * cursor, the status record, the policy step, and what a relay in between can and cannot do.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { normalizeBundle, verifyBundle } from "../../../src/core/bundle.ts";
import { parseStored, toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { syncPeer } from "../../../src/replication/pass.ts";
import { readPeerState, statusOf } from "../../../src/replication/state.ts";
import { ClaimsDb } from "../../../src/storage/claims-db.ts";
import { withFileLockIfFree } from "../../../src/storage/flock.ts";
import { GroupCommit, GROUP_COMMIT_DEFAULTS } from "../../../src/storage/group-commit.ts";
import { peerId } from "../../../src/replication/peers.ts";
import { editPolicy } from "../../../src/storage/policy.ts";
import { listQuarantine } from "../../../src/storage/quarantine.ts";
import { tailAudit } from "../../../src/storage/audit.ts";
import { readVillage } from "../../../src/storage/villages.ts";
import { addPolicySignature, newPolicyUpdate, policyHash, policyUpdateToJson, type PolicyUpdate } from "../../../src/core/policy-update.ts";
import { keypair } from "../server/helpers.ts";
import { addPeerOf, localNode, startPeer, startRelay, VID, type LocalNode, type PeerNode, type Relay } from "./helpers.ts";

let peerNode: PeerNode | undefined;
let local: LocalNode | undefined;
let relays: Relay[] = [];
afterEach(async () => {
  for (const r of relays) r.stop();
  relays = [];
  await peerNode?.cleanup();
  local?.cleanup();
  peerNode = undefined;
  local = undefined;
});

function setUp(opts: { peerPolicy?: Parameters<typeof startPeer>[0] } = {}): { a: PeerNode; b: LocalNode } {
  peerNode = startPeer(opts.peerPolicy);
  local = localNode(typeof opts.peerPolicy?.policy === "object" ? opts.peerPolicy.policy : undefined);
  return { a: peerNode, b: local };
}

function indexRows(b: LocalNode): Array<{ bundle_id: string }> {
  const file = b.paths.claimsIndexFile();
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { bundle_id: string });
}

function storedIds(b: LocalNode): string[] {
  return [...new Set(indexRows(b).map((r) => r.bundle_id))].sort();
}

describe("a sync pass with a peer", () => {
  test("pulls every bundle through the village's pipeline once, page by page, and records where it stands", async () => {
    const { a, b } = setUp();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await a.push({ claims: 2 }));
    addPeerOf(b, a.url, a.tokens.observer);

    const first = await syncPeer({ paths: b.paths, pageLimit: 2 }, { village: VID, url: a.url });
    expect(first).toMatchObject({ status: "ok", pulled: 5, accepted: 5, quarantined: 0, refused: 0, drift: "aligned", caught_up: true });
    expect(storedIds(b)).toEqual([...ids].sort());
    expect(indexRows(b)).toHaveLength(10); // each claim indexed once
    const audit = tailAudit(b.paths, { villageId: VID, action: "ingest.accept" });
    expect(audit.map((r) => r.actor)).toEqual(ids.map(() => `pull:${a.url}`));

    const status = statusOf(readPeerState(b.paths, { village: VID, url: a.url }));
    expect(Object.keys(status).sort()).toEqual(
      ["village", "url", "last_success", "last_error", "cursor", "bundles_pulled", "bundles_accepted", "bundles_quarantined", "bundles_refused", "local_head", "remote_head", "drift"].sort(),
    );
    expect(status).toMatchObject({ bundles_pulled: 5, bundles_accepted: 5, last_error: null, drift: "aligned" });
    expect(status.local_head).toBe(status.remote_head as string);
    expect(typeof status.cursor).toBe("string");

    // nothing new: the next pass is answered 304 and changes nothing
    const again = await syncPeer({ paths: b.paths }, { village: VID, url: a.url });
    expect(again).toMatchObject({ status: "ok", pulled: 0, drift: "aligned" });
    expect(a.logs.some((l) => (l as { path?: string; status?: number }).path === `/villages/${VID}/bundles` && (l as { status: number }).status === 304)).toBe(true);
    expect(indexRows(b)).toHaveLength(10);

    // a new bundle on the peer comes with the next pass, and only it
    const later = await a.push();
    expect(await syncPeer({ paths: b.paths }, { village: VID, url: a.url })).toMatchObject({ pulled: 1, accepted: 1 });
    expect(storedIds(b)).toEqual([...ids, later].sort());
  });

  test("a pass stopped in the middle of a page counts what it stored; the cursor stays before the page", async () => {
    const { a, b } = setUp();
    for (let i = 0; i < 3; i++) await a.push();
    addPeerOf(b, a.url, a.tokens.observer);
    const owners = new ClaimsDb(b.paths);
    const stop = new AbortController();
    // the node is told to stop while the page's first bundle is being stored
    class StoppingCommit extends GroupCommit {
      override submit(item: Parameters<GroupCommit["submit"]>[0]) {
        stop.abort();
        return super.submit(item);
      }
    }
    const commit = new StoppingCommit(b.paths, owners, { ...GROUP_COMMIT_DEFAULTS, checkpointMs: 60_000 });
    try {
      const r = await syncPeer({ paths: b.paths, commit, owners, signal: stop.signal, pageLimit: 3 }, { village: VID, url: a.url });
      expect(r).toMatchObject({ status: "stopped", pulled: 3, accepted: 1 });
    } finally {
      await commit.close();
      owners.close();
    }
    expect(storedIds(b)).toHaveLength(1);
    expect(readPeerState(b.paths, { village: VID, url: a.url })).toMatchObject({ cursor: null, step: "idle", bundles_accepted: 1 });
    // the next pass asks for the page again and stores the rest; the counters match the store
    expect(await syncPeer({ paths: b.paths }, { village: VID, url: a.url })).toMatchObject({ status: "ok", accepted: 2 });
    expect(readPeerState(b.paths, { village: VID, url: a.url }).bundles_accepted).toBe(storedIds(b).length);
    expect(storedIds(b)).toHaveLength(3);
  });

  test("through the node's group commit, bundles of a page are made durable together before the cursor moves", async () => {
    const { a, b } = setUp();
    for (let i = 0; i < 6; i++) await a.push();
    addPeerOf(b, a.url, a.tokens.observer);
    const owners = new ClaimsDb(b.paths);
    const commit = new GroupCommit(b.paths, owners, { ...GROUP_COMMIT_DEFAULTS, checkpointMs: 60_000 });
    try {
      const r = await syncPeer({ paths: b.paths, commit, owners, pageLimit: 3 }, { village: VID, url: a.url });
      expect(r).toMatchObject({ status: "ok", accepted: 6 });
      // the write-ahead log holds them: durable before any checkpoint
      const logged = readFileSync(b.paths.ingestLogFile(), "utf8").split("\n").filter(Boolean);
      expect(logged).toHaveLength(6);
    } finally {
      await commit.close();
      owners.close();
    }
    expect(storedIds(b)).toHaveLength(6);
  });

  test("a bundle the local policy forbids is quarantined here, not stored, and a peer at an older policy is 'ahead' of us", async () => {
    const { a, b } = setUp();
    const id = await a.push();
    // we block the peer's issuer key; the peer has not (its policy is older than ours)
    const blocked = sha256Hex(publicKeyFromSeed(a.key.seed));
    editPolicy(b.paths, VID, (p) => ({ ...p, issuer_blocklist: [blocked] }), { actor: "test" });
    addPeerOf(b, a.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: a.url });
    expect(r).toMatchObject({ status: "ok", pulled: 1, accepted: 0, quarantined: 1, drift: "ahead" });
    expect(listQuarantine(b.paths, VID).map((e) => e.bundle_id)).toEqual([id]);
    expect(storedIds(b)).toEqual([]);
  });

  test("the peer's signed policy updates are verified and applied before its bundles are judged", async () => {
    const signer = keypair();
    const guarded = { require_policy_signature: true, policy_signer_allowlist: [signer.keyHash], policy_signature_threshold_m: 1 };
    const { a, b } = setUp({ peerPolicy: { policy: guarded } });
    const before = readVillage(a.paths, VID).policy;
    // the peer narrows the window to 10 days (signed), then takes a bundle of 10 days
    const update = addPolicySignature(
      newPolicyUpdate({ villageId: VID, policy: { ...before, max_window_days: 10 }, actor: "alice", previousPolicyHash: policyHash(before) }),
      signer.seed,
    );
    const res = await a.send("POST", `/villages/${VID}/policy`, { token: a.tokens.admin, body: toJsonText(policyUpdateToJson(update)) });
    expect(res.status).toBe(200);
    await a.push({ windowDays: 10 });
    addPeerOf(b, a.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: a.url });
    expect(r).toMatchObject({ status: "ok", accepted: 1, drift: "aligned" });
    expect(policyHash(readVillage(b.paths, VID).policy)).toBe(update.policy_hash);
  });

  test("an unsigned policy change at the peer is refused, and its bundles wait", async () => {
    const signer = keypair();
    const guarded = { require_policy_signature: true, policy_signer_allowlist: [signer.keyHash], policy_signature_threshold_m: 1 };
    const { a, b } = setUp({ peerPolicy: { policy: guarded } });
    editPolicy(a.paths, VID, (p) => ({ ...p, max_window_days: 10 }), { actor: "someone" });
    await a.push({ windowDays: 5 });
    addPeerOf(b, a.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: a.url });
    expect(r).toMatchObject({ status: "failed", code: "policy_signature_required", pulled: 0 });
    expect(readVillage(b.paths, VID).policy.max_window_days).toBe(30);
    expect(storedIds(b)).toEqual([]);
  });

  /** A (signed policy, one signer) at u1, and B synced to it. */
  async function syncedAtU1() {
    const signer = keypair();
    const guarded = { require_policy_signature: true, policy_signer_allowlist: [signer.keyHash], policy_signature_threshold_m: 1 };
    const { a, b } = setUp({ peerPolicy: { policy: guarded } });
    const base = readVillage(a.paths, VID).policy;
    const u1 = addPolicySignature(
      newPolicyUpdate({ villageId: VID, policy: { ...base, max_window_days: 12 }, actor: "alice", previousPolicyHash: policyHash(base) }),
      signer.seed,
    );
    expect((await a.send("POST", `/villages/${VID}/policy`, { token: a.tokens.admin, body: toJsonText(policyUpdateToJson(u1)) })).status).toBe(200);
    addPeerOf(b, a.url, a.tokens.observer);
    expect(await syncPeer({ paths: b.paths }, { village: VID, url: a.url })).toMatchObject({ status: "ok" });
    expect(policyHash(readVillage(b.paths, VID).policy)).toBe(u1.policy_hash);
    return { a, b, base, u1, signer };
  }

  /** B syncs through a relay in front of A that claims `update` as the head, after u1. */
  async function syncThroughRelayServing(a: PeerNode, b: LocalNode, update: PolicyUpdate) {
    const relay = startRelay(a.url, (_req, url) => {
      if (url.pathname.endsWith("/policy/latest")) return Response.json({ ...(policyUpdateToJson(update) as object), artifact: policyUpdateToJson(update), signed: true });
      if (url.pathname.endsWith("/policy/updates")) return Response.json({ updates: [policyUpdateToJson(update)], next_cursor: null, head: update.policy_hash });
      return null;
    });
    relays.push(relay);
    addPeerOf(b, relay.url, a.tokens.observer);
    return syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
  }

  test("a peer serving an update older than our newest one is refused as a rollback, not taken for a peer behind us", async () => {
    const { a, b, base, u1, signer } = await syncedAtU1();
    // a relay claims a newer head whose update is dated before u1 (a replayed or backdated update)
    const old = addPolicySignature(
      newPolicyUpdate({ villageId: VID, policy: { ...base, max_window_days: 3 }, actor: "mallory", previousPolicyHash: u1.policy_hash, createdAt: "2020-01-01T00:00:00Z" }),
      signer.seed,
    );
    expect(await syncThroughRelayServing(a, b, old)).toMatchObject({ status: "failed", code: "policy_rollback", pulled: 0 });
    expect(policyHash(readVillage(b.paths, VID).policy)).toBe(u1.policy_hash);
  });

  test("a backdated update back to an earlier policy of ours is refused as a rollback, not taken for a peer behind us", async () => {
    const { a, b, base, u1, signer } = await syncedAtU1();
    // the relay's head is the base policy again (a hash our chain holds), reached by an update dated before u1
    const back = addPolicySignature(
      newPolicyUpdate({ villageId: VID, policy: base, actor: "mallory", previousPolicyHash: u1.policy_hash, createdAt: "2020-01-01T00:00:00Z" }),
      signer.seed,
    );
    expect(back.policy_hash).toBe(policyHash(base));
    expect(await syncThroughRelayServing(a, b, back)).toMatchObject({ status: "failed", code: "policy_rollback", pulled: 0 });
    expect(policyHash(readVillage(b.paths, VID).policy)).toBe(u1.policy_hash);
  });

  test("another pass holding the peer makes this one report in_progress at once, touching nothing", async () => {
    const { a, b } = setUp();
    await a.push();
    addPeerOf(b, a.url, a.tokens.observer);
    let inner: unknown;
    await withFileLockIfFree(b.paths.peerLockFile(VID, peerId(a.url)), async () => {
      inner = await syncPeer({ paths: b.paths }, { village: VID, url: a.url });
    });
    expect(inner).toMatchObject({ status: "in_progress", pulled: 0 });
    expect(existsSync(b.paths.peerStateFile(VID, peerId(a.url)))).toBe(false);
    expect(await syncPeer({ paths: b.paths }, { village: VID, url: a.url })).toMatchObject({ status: "ok", accepted: 1 });
  });

  test("a peer that is no longer configured is not synced", async () => {
    const { a, b } = setUp();
    expect(await syncPeer({ paths: b.paths }, { village: VID, url: a.url })).toMatchObject({ status: "removed" });
  });
});

describe("what a relay between the nodes can do", () => {
  /** Rewrites the bundles of every feed page through `edit`. */
  function feedRelay(a: PeerNode, edit: (bundles: Array<Record<string, JsonValue>>, url: URL) => Array<Record<string, JsonValue>>): Relay {
    const relay = startRelay(a.url, async (_req, url, forward) => {
      if (url.pathname !== `/villages/${VID}/bundles`) return null;
      const res = await forward();
      if (res.status !== 200) return res;
      const body = parseStored(new Uint8Array(await res.arrayBuffer())) as { bundles: Array<Record<string, JsonValue>>; next_cursor: JsonValue };
      return new Response(toJsonText({ ...body, bundles: edit(body.bundles, url) } as unknown as JsonValue), { headers: { "content-type": "application/json" } });
    });
    relays.push(relay);
    return relay;
  }

  test("an altered bundle is refused and counted; the cursor stays before it, and the honest peer supplies it", async () => {
    const { a, b } = setUp();
    const ids = [await a.push(), await a.push(), await a.push()];
    const relay = feedRelay(a, (bundles) =>
      bundles.map((bd) => (bd.bundle_id === ids[1] ? { ...bd, issuer: "someone-else" } : bd)),
    );
    addPeerOf(b, relay.url, a.tokens.observer);
    addPeerOf(b, a.url, a.tokens.observer);

    const viaRelay = await syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
    expect(viaRelay).toMatchObject({ status: "failed", refused: 1, accepted: 2 });
    expect(["bundle_id_mismatch", "invalid_signature"]).toContain(viaRelay.code as string);
    const state = readPeerState(b.paths, { village: VID, url: relay.url });
    expect(state.cursor).toBeNull();
    expect(state.bundles_refused).toBe(1);
    expect(state.last_error?.detail).toContain(ids[1] as string);
    expect(storedIds(b)).toEqual([ids[0] as string, ids[2] as string].sort());

    expect(await syncPeer({ paths: b.paths }, { village: VID, url: a.url })).toMatchObject({ status: "ok", accepted: 1 });
    expect(storedIds(b)).toEqual([...ids].sort());
    // every stored file is the peer's bundle, unaltered
    for (const id of ids) {
      const stored = normalizeBundle(parseStored(readFileSync(b.paths.bundleFile(id, VID))));
      expect(verifyBundle(stored).valid).toBe(true);
      expect(stored.issuer).toBe("issuer-a");
    }
    // once the real one is here, the altered copy is recognised by id and skipped: the relay path catches up
    expect(await syncPeer({ paths: b.paths }, { village: VID, url: relay.url })).toMatchObject({ status: "ok", refused: 0 });
  });

  test("dropped and reordered bundles change nothing stored; a replayed page is refused", async () => {
    const { a, b } = setUp();
    const ids = [await a.push(), await a.push(), await a.push(), await a.push()];
    const dropping = feedRelay(a, (bundles) => [...bundles].reverse().filter((bd) => bd.bundle_id !== ids[0]));
    addPeerOf(b, dropping.url, a.tokens.observer);
    expect(await syncPeer({ paths: b.paths }, { village: VID, url: dropping.url })).toMatchObject({ status: "ok", accepted: 3 });
    expect(storedIds(b)).toEqual(ids.slice(1).sort());

    // a relay that answers every page with the first one
    const replaying = startRelay(a.url, async (_req, url) => {
      if (url.pathname !== `/villages/${VID}/bundles`) return null;
      return fetch(`${a.url}${url.pathname}?limit=1`, { headers: { authorization: `Bearer ${a.tokens.observer}` } });
    });
    relays.push(replaying);
    addPeerOf(b, replaying.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: replaying.url });
    expect(r).toMatchObject({ status: "failed", code: "remote_error" });
    expect(r.detail).toContain("replayed");
  });

  test("garbage instead of a page is a remote_error naming the feed; the cursor does not move", async () => {
    const { a, b } = setUp();
    await a.push();
    const relay = startRelay(a.url, (_req, url) => (url.pathname.endsWith("/bundles") ? new Response("<html>oops</html>", { status: 200 }) : null));
    relays.push(relay);
    addPeerOf(b, relay.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
    expect(r).toMatchObject({ status: "failed", code: "remote_error" });
    expect(r.detail).toContain("bundle feed");
    expect(readPeerState(b.paths, { village: VID, url: relay.url })).toMatchObject({ cursor: null, failures: 1 });
  });

  test("a next_cursor that is not a cursor is a remote_error; the stored cursor does not move", async () => {
    const { a, b } = setUp();
    await a.push();
    const relay = startRelay(a.url, (_req, url) =>
      url.pathname.endsWith("/bundles") ? Response.json({ bundles: [], next_cursor: "../../etc/passwd" }) : null,
    );
    relays.push(relay);
    addPeerOf(b, relay.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
    expect(r).toMatchObject({ status: "failed", code: "remote_error" });
    expect(r.detail).toContain("next_cursor is not a cursor");
    expect(readPeerState(b.paths, { village: VID, url: relay.url })).toMatchObject({ cursor: null, failures: 1 });
  });

  test("a 429 with Retry-After ends the pass at once and the wait is recorded for the loop", async () => {
    const { a, b } = setUp();
    const relay = startRelay(a.url, () =>
      new Response(JSON.stringify({ detail: "slow down", code: "rate_limited" }), { status: 429, headers: { "retry-after": "7" } }),
    );
    relays.push(relay);
    addPeerOf(b, relay.url, a.tokens.observer);
    const asked: Array<number | null> = [];
    const before = Date.now();
    const r = await syncPeer(
      { paths: b.paths, delayAfter: (o) => (asked.push(o.retryAfterMs), Math.max(1000, o.retryAfterMs ?? 0)) },
      { village: VID, url: relay.url },
    );
    expect(r).toMatchObject({ status: "failed", code: "rate_limited", retry_after_ms: 7000, next_delay_ms: 7000 });
    expect(asked).toEqual([7000]);
    const state = readPeerState(b.paths, { village: VID, url: relay.url });
    expect(Date.parse(state.next_attempt as string) - before).toBeGreaterThanOrEqual(7000);
    expect(state.last_error).toMatchObject({ code: "rate_limited", detail: "slow down" });
  });

  test("a bare 503 ends the pass as unavailable naming the request, with the peer's wait kept", async () => {
    const { a, b } = setUp();
    const relay = startRelay(a.url, () => new Response("", { status: 503, headers: { "retry-after": "3" } }));
    relays.push(relay);
    addPeerOf(b, relay.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
    expect(r).toMatchObject({ status: "failed", code: "unavailable", retry_after_ms: 3000 });
    expect(r.detail).toBe("GET /.well-known/links/node answered HTTP 503");
    expect(readPeerState(b.paths, { village: VID, url: relay.url })).toMatchObject({ cursor: null, failures: 1 });
  });

  test("a success after failures clears last_error", async () => {
    const { a, b } = setUp();
    let down = true;
    const relay = startRelay(a.url, () => (down ? new Response("", { status: 502 }) : null));
    relays.push(relay);
    addPeerOf(b, relay.url, a.tokens.observer);
    expect(await syncPeer({ paths: b.paths }, { village: VID, url: relay.url })).toMatchObject({ status: "failed", code: "remote_error" });
    expect(readPeerState(b.paths, { village: VID, url: relay.url }).last_error).not.toBeNull();
    down = false;
    expect(await syncPeer({ paths: b.paths }, { village: VID, url: relay.url })).toMatchObject({ status: "ok" });
    expect(readPeerState(b.paths, { village: VID, url: relay.url })).toMatchObject({ last_error: null, failures: 0 });
  });
});
