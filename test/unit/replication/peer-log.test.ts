/**
 * The peer's audit log, checked on every pass: its node key pinned on first contact, its
 * checkpoint verified with that key, and each new checkpoint proved consistent with the last one
 * kept. The peer here serves a log built with the core's Merkle and signed-note code.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { encodeBase64 } from "../../../src/core/base64.ts";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { consistencyProof, leafHash, rootAt, rootOfLeaves, type SubtreeHashes } from "../../../src/core/merkle.ts";
import { signCheckpoint } from "../../../src/core/signed-note.ts";
import { syncPeer } from "../../../src/replication/pass.ts";
import { readPeerState } from "../../../src/replication/state.ts";
import { addPeerOf, localNode, startPeer, startRelay, VID, type LocalNode, type PeerNode, type Relay } from "./helpers.ts";

/** A transparency log the way a node keeps one for a village: leaves, signed checkpoints, proofs. */
class ServedLog {
  leaves: Uint8Array[] = [];
  seed = generateSeed();
  /** what /.well-known/links/node answers; null: 404 */
  published = true;
  origin: (vid: string) => string = (vid) => `links/${this.name}/${vid}`;

  constructor(public name = "node-a") {}

  append(n: number): void {
    for (let i = 0; i < n; i++) this.leaves.push(leafHash(new TextEncoder().encode(`{"row":${this.leaves.length},"r":${Math.random()}}`)));
  }

  private readonly get: SubtreeHashes = (level, index) => rootOfLeaves(this.leaves.slice(index * 2 ** level, (index + 1) * 2 ** level));

  nodeKey(): object {
    const pub = publicKeyFromSeed(this.seed);
    return { name: this.name, public_key: encodeBase64(pub), key_hash: sha256Hex(pub) };
  }

  checkpoint(vid: string, seed = this.seed): string {
    const size = this.leaves.length;
    return signCheckpoint({ origin: this.origin(vid), size, rootHash: rootAt(this.get, size), extensions: [] }, this.name, seed);
  }

  proof(from: number, to: number): string[] {
    return consistencyProof(this.get, from, to).map(encodeBase64);
  }
}

let peerNode: PeerNode | undefined;
let local: LocalNode | undefined;
let relay: Relay | undefined;
afterEach(async () => {
  relay?.stop();
  await peerNode?.cleanup();
  local?.cleanup();
});

/** A real peer node behind a relay that serves `log` as the peer's audit log. */
function setUp(log: ServedLog, overrides: { checkpointSeed?: () => Uint8Array } = {}): { a: PeerNode; b: LocalNode; url: string } {
  peerNode = startPeer();
  local = localNode();
  const a = peerNode;
  relay = startRelay(a.url, (_req, url) => {
    if (url.pathname === "/.well-known/links/node") {
      return log.published ? Response.json(log.nodeKey()) : Response.json({ detail: "not found", code: "not_found" }, { status: 404 });
    }
    if (url.pathname === `/villages/${VID}/audit/checkpoint`) return new Response(log.checkpoint(VID, overrides.checkpointSeed?.()), { headers: { "content-type": "text/plain" } });
    if (url.pathname === `/villages/${VID}/audit/proof/consistency`) {
      return Response.json({ hashes: log.proof(Number(url.searchParams.get("from")), Number(url.searchParams.get("to"))) });
    }
    return null;
  });
  addPeerOf(local, relay.url, a.tokens.observer);
  return { a, b: local, url: relay.url };
}

const pass = (b: LocalNode, url: string) => syncPeer({ paths: b.paths }, { village: VID, url });

describe("the peer's audit log on every pass", () => {
  test("its node key is pinned and its checkpoint kept on first contact; a grown log with a valid proof passes", async () => {
    const log = new ServedLog();
    log.append(5);
    const { b, url } = setUp(log);
    expect(await pass(b, url)).toMatchObject({ status: "ok" });
    const first = readPeerState(b.paths, { village: VID, url });
    expect(first).toMatchObject({ audit: "checked", node_key: log.nodeKey(), checkpoint: { size: 5 } });

    log.append(6);
    expect(await pass(b, url)).toMatchObject({ status: "ok" });
    expect(readPeerState(b.paths, { village: VID, url }).checkpoint?.size).toBe(11);
    expect(relay?.seen).toContain(`/villages/${VID}/audit/proof/consistency`);
  });

  test.each([
    ["an edited row", (log: ServedLog) => { log.leaves[1] = leafHash(new TextEncoder().encode("edited")); log.append(2); }],
    ["the same size with another root", (log: ServedLog) => { log.leaves[4] = leafHash(new TextEncoder().encode("swapped")); }],
    ["a shorter log", (log: ServedLog) => { log.leaves.pop(); }],
    ["a log started over", (log: ServedLog) => { log.leaves = []; log.append(9); }],
  ])("%s is audit_inconsistent: the pass is refused before any bundle is pulled", async (_what, rewrite) => {
    const log = new ServedLog();
    log.append(5);
    const { a, b, url } = setUp(log);
    expect(await pass(b, url)).toMatchObject({ status: "ok" });
    rewrite(log);
    await a.push();
    const r = await pass(b, url);
    expect(r).toMatchObject({ status: "failed", code: "audit_inconsistent", pulled: 0, drift: "diverged" });
    const state = readPeerState(b.paths, { village: VID, url });
    expect(state.last_error?.code).toBe("audit_inconsistent");
    expect(state.checkpoint?.size).toBe(5); // the checkpoint kept is still the one that verified
  });

  test("a changed node key is refused loudly and the pin stays", async () => {
    const log = new ServedLog();
    log.append(3);
    const { b, url } = setUp(log);
    await pass(b, url);
    const pinned = readPeerState(b.paths, { village: VID, url }).node_key;
    log.seed = generateSeed();
    const r = await pass(b, url);
    expect(r).toMatchObject({ status: "failed", code: "node_key_changed", drift: "diverged" });
    expect(r.detail).toContain(pinned?.key_hash as string);
    expect(readPeerState(b.paths, { village: VID, url }).node_key).toEqual(pinned);
  });

  test("a checkpoint signed by another key under the peer's name does not verify", async () => {
    const log = new ServedLog();
    log.append(3);
    const forger = generateSeed();
    const { b, url } = setUp(log, { checkpointSeed: () => forger });
    expect(await pass(b, url)).toMatchObject({ status: "failed", code: "invalid_signature" });
  });

  test("a checkpoint of another log (origin) is refused", async () => {
    const log = new ServedLog();
    log.append(3);
    log.origin = () => "links/node-a/other-village";
    const { b, url } = setUp(log);
    const r = await pass(b, url);
    expect(r).toMatchObject({ status: "failed", code: "invalid_signature" });
    expect(r.detail).toContain("another log");
  });

  test("a real peer node's own audit log is checked: key pinned, checkpoints kept and extended", async () => {
    peerNode = startPeer({ server: { checkpointIntervalMs: 100 } });
    local = localNode();
    const a = peerNode;
    addPeerOf(local, a.url, a.tokens.observer);
    await a.push();
    expect(await pass(local, a.url)).toMatchObject({ status: "ok", accepted: 1 });
    const first = readPeerState(local.paths, { village: VID, url: a.url });
    expect(first.audit).toBe("checked");
    expect(first.node_key?.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(first.checkpoint?.origin).toBe(`links/${first.node_key?.name}/${VID}`);
    await a.push();
    await a.push();
    // the peer signs its grown tree within its checkpoint interval
    const checkpointSize = async () => Number((await (await a.send("GET", `/villages/${VID}/audit/checkpoint`, { token: a.tokens.observer })).text()).split("\n")[1]);
    for (let i = 0; i < 100 && (await checkpointSize()) <= (first.checkpoint?.size as number); i++) await Bun.sleep(50);
    expect(await pass(local, a.url)).toMatchObject({ status: "ok", accepted: 2 });
    const second = readPeerState(local.paths, { village: VID, url: a.url });
    expect(second.checkpoint?.size).toBeGreaterThan(first.checkpoint?.size as number);
    expect(second.node_key).toEqual(first.node_key);
  });

  test("a peer that published its key and stops is refused; one that never did is synced unchecked", async () => {
    const log = new ServedLog();
    log.append(3);
    log.published = false;
    const { a, b, url } = setUp(log);
    await a.push();
    expect(await pass(b, url)).toMatchObject({ status: "ok", accepted: 1 });
    expect(readPeerState(b.paths, { village: VID, url })).toMatchObject({ audit: "unavailable", node_key: null });

    log.published = true;
    expect(await pass(b, url)).toMatchObject({ status: "ok" });
    log.published = false;
    expect(await pass(b, url)).toMatchObject({ status: "failed", code: "audit_inconsistent" });
  });
});
