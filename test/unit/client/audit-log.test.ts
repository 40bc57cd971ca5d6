/**
 * The peer check over real HTTP: a real node (startServer on a loopback port) for the honest
 * and the rewritten histories, and a small fake node for answers no honest node gives.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkPeerAudit, fetchNodeKey, type PeerCheckpoint, type PinnedNodeKey } from "../../../src/client/audit-log.ts";
import { Remote } from "../../../src/client/remote.ts";
import { encodeBase64 } from "../../../src/core/base64.ts";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { EMPTY_ROOT, leafHash } from "../../../src/core/merkle.ts";
import { signCheckpoint } from "../../../src/core/signed-note.ts";
import { startServer, type ServerHandle } from "../../../src/server/serve.ts";
import { addMember } from "../../../src/storage/members.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { keypair, signedBundle } from "../server/helpers.ts";

// servers, processes and disk syncs on a busy 2-core machine: bun ignores bunfig's timeout
setDefaultTimeout(30_000);

const VID = "garden";
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Peer {
  dataDir: string;
  token: string;
  handle: ServerHandle;
  remote: Remote;
  start(): Promise<void>;
  stop(): Promise<void>;
  push(n: number): Promise<void>;
}

async function realPeer(): Promise<Peer> {
  const parent = mkdtempSync(join(tmpdir(), "links-peer-"));
  const dataDir = join(parent, "data");
  const paths = new DataPaths(dataDir);
  createVillage(paths, { villageId: VID, name: "Garden", adminId: "alice" });
  const token = addMember(paths, VID, "alice", "admin");
  const key = keypair();
  const peer: Peer = {
    dataDir,
    token,
    handle: undefined as unknown as ServerHandle,
    remote: undefined as unknown as Remote,
    async start() {
      peer.handle = await startServer({ bind: "127.0.0.1", port: 0, dataDir, handleSignals: false, announce: () => {}, logger: () => {}, nodeName: "peer-a", checkpointIntervalMs: 20 });
      peer.remote = new Remote({ baseUrl: `http://127.0.0.1:${peer.handle.port}`, token });
    },
    async stop() {
      await peer.handle.stop();
    },
    async push(n: number) {
      for (let i = 0; i < n; i++) {
        const res = await fetch(`http://127.0.0.1:${peer.handle.port}/villages/${VID}/inbox`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: toJsonText(signedBundle(key) as unknown as JsonValue),
        });
        expect(res.status).toBe(200);
      }
    },
  };
  await peer.start();
  cleanups.push(async () => {
    await peer.handle.stop();
    rmSync(parent, { recursive: true, force: true });
  });
  return peer;
}

/** Checks until the peer's checkpoint covers `size` rows (its signer runs every 20 ms). */
async function checkUntil(peer: Peer, pinned: PinnedNodeKey, last: PeerCheckpoint | null, size: number): Promise<PeerCheckpoint> {
  for (let i = 0; i < 200; i++) {
    const c = await checkPeerAudit(peer.remote, VID, pinned, last);
    if (c.size >= size) return c;
    await Bun.sleep(20);
  }
  throw new Error(`the peer never signed ${size} rows`);
}

describe("checking a peer's audit log", () => {
  test("the first checkpoint is taken on trust of the pinned key; later ones must extend it", async () => {
    const peer = await realPeer();
    const pinned = await fetchNodeKey(peer.remote);
    expect(pinned.name).toBe("peer-a");
    await peer.push(2);
    const first = await checkUntil(peer, pinned, null, 2);
    expect(first.origin).toBe(`links/peer-a/${VID}`);
    await peer.push(3);
    const second = await checkUntil(peer, pinned, first, 5);
    expect(second.size).toBe(5);
    // nothing new: the same checkpoint again is fine
    expect((await checkPeerAudit(peer.remote, VID, pinned, second)).size).toBe(5);
  });

  test("a peer that rewrote its history is refused: audit_inconsistent", async () => {
    const peer = await realPeer();
    const pinned = await fetchNodeKey(peer.remote);
    await peer.push(4);
    const seen = await checkUntil(peer, pinned, null, 4);
    await peer.stop();
    // its operator drops a row and, to cover it up, the checkpoints and the index
    const paths = new DataPaths(peer.dataDir);
    const lines = readFileSync(paths.auditFile(), "utf8").split("\n").filter(Boolean);
    writeFileSync(paths.auditFile(), `${lines.filter((_, i) => i !== 1).join("\n")}\n`);
    unlinkSync(paths.checkpointsFile());
    unlinkSync(paths.auditIndexFile());
    await peer.start();
    await peer.push(3);
    const error = await checkUntil(peer, pinned, seen, 99).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "audit_inconsistent" });
    expect((error as Error).message).toContain(`links/peer-a/${VID}`);
    expect((error as Error).message).toContain("rewrote its audit history");
  });

  test("a checkpoint not signed by the pinned key is refused: invalid_signature", async () => {
    const peer = await realPeer();
    const impostor = { name: "peer-a", publicKey: publicKeyFromSeed(generateSeed()) };
    await expect(checkPeerAudit(peer.remote, VID, impostor, null)).rejects.toMatchObject({ code: "invalid_signature" });
    const renamed = { ...(await fetchNodeKey(peer.remote)), name: "peer-b" };
    await expect(checkPeerAudit(peer.remote, VID, renamed, null)).rejects.toMatchObject({ code: "invalid_signature" });
  });
});

/** A node that answers whatever the test says, signing its checkpoints with a known key. */
function fakePeer(answer: (path: string) => Response): Remote {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => answer(new URL(req.url).pathname + new URL(req.url).search) });
  cleanups.push(() => server.stop(true));
  return new Remote({ baseUrl: `http://127.0.0.1:${server.port}` });
}

describe("answers no honest node gives", () => {
  const seed = generateSeed();
  const pinned = { name: "fake", publicKey: publicKeyFromSeed(seed) };
  const root = (n: number) => (n === 0 ? EMPTY_ROOT : leafHash(new Uint8Array([n])));
  const note = (size: number) => signCheckpoint({ origin: `links/fake/${VID}`, size, rootHash: root(size), extensions: [] }, "fake", seed);
  const kept = (size: number): PeerCheckpoint => ({ origin: `links/fake/${VID}`, size, root_hash: encodeBase64(root(size)), note: note(size) });
  const text = (body: string) => new Response(body, { headers: { "content-type": "text/plain" } });

  test("a tree that shrank, or two roots for one size: audit_inconsistent", async () => {
    let size = 3;
    const remote = fakePeer(() => text(note(size)));
    await expect(checkPeerAudit(remote, VID, pinned, kept(5))).rejects.toMatchObject({ code: "audit_inconsistent" });
    const other = signCheckpoint({ origin: `links/fake/${VID}`, size: 5, rootHash: root(6), extensions: [] }, "fake", seed);
    const twin = fakePeer(() => text(other));
    await expect(checkPeerAudit(twin, VID, pinned, kept(5))).rejects.toMatchObject({ code: "audit_inconsistent" });
    size = 5;
    expect((await checkPeerAudit(remote, VID, pinned, kept(5))).size).toBe(5);
  });

  test("a consistency proof that does not prove it: audit_inconsistent", async () => {
    const remote = fakePeer((path) => (path.includes("/proof/") ? Response.json({ hashes: [encodeBase64(root(9))] }) : text(note(7))));
    await expect(checkPeerAudit(remote, VID, pinned, kept(3))).rejects.toMatchObject({ code: "audit_inconsistent" });
  });

  const malformed: Array<[string, (path: string) => Response]> = [
    ["a checkpoint over 64 KiB", () => text(`${"x".repeat(70_000)}\n`)],
    ["a checkpoint that is not a signed note", () => text("links/fake/garden\n3\n")],
    ["a checkpoint that is not UTF-8", () => new Response(new Uint8Array([0xff, 0xfe, 0x0a]))],
    ["a proof that is not an array", (p) => (p.includes("/proof/") ? Response.json({ hashes: "x" }) : text(note(7)))],
    ["a proof with too many hashes", (p) => (p.includes("/proof/") ? Response.json({ hashes: Array(200).fill(encodeBase64(root(1))) }) : text(note(7)))],
    ["a proof hash of 31 bytes", (p) => (p.includes("/proof/") ? Response.json({ hashes: [encodeBase64(new Uint8Array(31))] }) : text(note(7)))],
    ["a proof hash in base64url", (p) => (p.includes("/proof/") ? Response.json({ hashes: [Buffer.from(root(1)).toString("base64url")] }) : text(note(7)))],
    ["a proof over 16 KiB", (p) => (p.includes("/proof/") ? Response.json({ hashes: [], pad: "x".repeat(20_000) }) : text(note(7)))],
  ];
  for (const [what, answer] of malformed) {
    test(`${what}: remote_error`, async () => {
      const remote = fakePeer(answer);
      await expect(checkPeerAudit(remote, VID, pinned, kept(3))).rejects.toMatchObject({ code: "remote_error" });
    });
  }

  test("a node key answer whose key_hash is not its key's, or whose name cannot be a node name: remote_error", async () => {
    const pub = encodeBase64(pinned.publicKey);
    for (const body of [
      { name: "fake", public_key: pub, key_hash: "0".repeat(64) },
      { name: "fa ke", public_key: pub, key_hash: new Bun.CryptoHasher("sha256").update(pinned.publicKey).digest("hex") },
      { name: "fake", public_key: pub.slice(0, -4), key_hash: "0".repeat(64) },
    ]) {
      await expect(fetchNodeKey(fakePeer(() => Response.json(body)))).rejects.toMatchObject({ code: "remote_error" });
    }
  });

  test("a kept checkpoint that is not the peer's is refused before asking it anything", async () => {
    const remote = fakePeer(() => text(note(3)));
    const forged = { ...kept(2), note: signCheckpoint({ origin: `links/fake/${VID}`, size: 2, rootHash: root(2), extensions: [] }, "fake", generateSeed()) };
    await expect(checkPeerAudit(remote, VID, pinned, forged)).rejects.toMatchObject({ code: "invalid_argument" });
  });
});
