/**
 * The check of a peer's audit log on every sync pass, and the one place a pass calls it:
 *
 * 1. the peer's node key (`GET /.well-known/links/node`) is pinned on first contact; a different
 *    key (or name) later refuses the pass (`node_key_changed`), and a peer that published a key
 *    and stops is refused too (`audit_inconsistent`). A peer that never published one (an older
 *    node, Python Links) is synced without the check and shown as such.
 * 2. the village's newest checkpoint (`GET /villages/:id/audit/checkpoint`, a C2SP signed note)
 *    must verify with the pinned key and name the village's log (`links/<name>/<village>`);
 * 3. it must extend the checkpoint kept from the last pass: same size and root, or a larger tree
 *    with a consistency proof (`GET /villages/:id/audit/proof/consistency`) that verifies. A
 *    smaller tree, another root at the same size, or a proof that fails is `audit_inconsistent`:
 *    the peer rewrote the history it showed us.
 *
 * What it returns is kept by the caller for the next pass. The fetching and checking here are what
 * the audit-log client does (src/client/audit-log.ts); when it is in the tree this module calls it.
 */
import { decodeBase64, encodeBase64 } from "../core/base64.ts";
import { sha256Hex } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { PUBLIC_KEY_BYTES } from "../core/ed25519.ts";
import { LinksError } from "../core/errors.ts";
import { HASH_BYTES, verifyConsistency } from "../core/merkle.ts";
import { isValidKeyName, NOTE_MAX_BYTES, openCheckpoint } from "../core/signed-note.ts";
import type { PeerRemote } from "./peer-remote.ts";
import type { KeptPeerCheckpoint, PinnedNodeKey } from "./state.ts";

export const PEER_LOG_LIMITS = {
  noteBytes: NOTE_MAX_BYTES,
  /** a consistency proof of trees up to 2^53 leaves has at most 2 * 53 hashes */
  proofHashes: 2 * 53,
};

export type PeerLogCheck =
  | { status: "checked"; nodeKey: PinnedNodeKey; checkpoint: KeptPeerCheckpoint }
  | { status: "unavailable" };

function inconsistent(detail: string): LinksError {
  return new LinksError("audit_inconsistent", detail);
}

/** The peer's node key, its fields checked; null when the peer publishes none (404). */
async function fetchNodeKey(remote: PeerRemote): Promise<PinnedNodeKey | null> {
  const res = await remote.request("GET", "/.well-known/links/node", { accept: [404] });
  if (res.status === 404) return null;
  const body = (typeof res.body === "object" && res.body !== null && !Array.isArray(res.body) ? res.body : {}) as Record<string, unknown>;
  const { name, public_key: publicKey, key_hash: keyHash } = body;
  const raw = typeof publicKey === "string" ? decodeBase64(publicKey) : null;
  if (typeof name !== "string" || !isValidKeyName(name) || name.includes("/") || name.length > 128) {
    throw new LinksError("remote_error", "the peer's node key has no usable name");
  }
  if (raw === null || raw.length !== PUBLIC_KEY_BYTES || typeof keyHash !== "string" || keyHash !== sha256Hex(raw)) {
    throw new LinksError("remote_error", "the peer's node key is not a 32-byte Ed25519 key (base64) with its sha256 as key_hash");
  }
  return { name, public_key: publicKey as string, key_hash: keyHash };
}

async function fetchConsistencyProof(remote: PeerRemote, vid: string, from: number, to: number): Promise<Uint8Array[]> {
  const res = await remote.request("GET", `/villages/${vid}/audit/proof/consistency?from=${from}&to=${to}`);
  const hashes = (res.body as { hashes?: unknown } | null)?.hashes;
  if (!Array.isArray(hashes) || hashes.length > PEER_LOG_LIMITS.proofHashes) throw new LinksError("remote_error", "the peer's consistency proof is not a list of hashes");
  return hashes.map((h) => {
    const bytes = typeof h === "string" ? decodeBase64(h) : null;
    if (bytes === null || bytes.length !== HASH_BYTES) throw new LinksError("remote_error", "a hash of the peer's consistency proof is not base64 of 32 bytes");
    return bytes;
  });
}

export async function checkPeerLog(remote: PeerRemote, vid: string, pinned: PinnedNodeKey | null, kept: KeptPeerCheckpoint | null): Promise<PeerLogCheck> {
  const key = await fetchNodeKey(remote);
  if (key === null) {
    if (pinned !== null) throw inconsistent(`the peer published node key ${pinned.key_hash} (${pinned.name}) before and now publishes none: its audit log can no longer be checked`);
    return { status: "unavailable" };
  }
  if (pinned !== null && (pinned.public_key !== key.public_key || pinned.name !== key.name)) {
    throw new LinksError(
      "node_key_changed",
      `the peer's node key changed: pinned ${pinned.key_hash} (${pinned.name}), now ${key.key_hash} (${key.name}). ` +
        "If the peer's operator really replaced it, remove the peer and add it again to pin the new key",
    );
  }
  const note = await remote.getText(`/villages/${vid}/audit/checkpoint`, PEER_LOG_LIMITS.noteBytes);
  const checkpoint = openCheckpoint(note, { name: key.name, publicKey: decodeBase64(key.public_key) as Uint8Array });
  const origin = `links/${key.name}/${vid}`;
  if (checkpoint.origin !== origin) {
    throw new LinksError("invalid_checkpoint", `the peer's checkpoint is for log ${JSON.stringify(checkpoint.origin.slice(0, 200))}, not ${origin}`);
  }
  const previous = pinned === null ? null : kept;
  if (previous !== null) {
    const oldRoot = decodeBase64(previous.root_hash);
    if (oldRoot === null || oldRoot.length !== HASH_BYTES) throw new LinksError("storage_error", "the checkpoint kept for this peer is damaged; remove and add the peer again");
    if (checkpoint.size < previous.size) {
      throw inconsistent(`the peer's audit log of village ${vid} shrank from ${previous.size} to ${checkpoint.size} rows since the last sync: it rewrote its history`);
    }
    const proof = checkpoint.size === previous.size || previous.size === 0 ? [] : await fetchConsistencyProof(remote, vid, previous.size, checkpoint.size);
    if (!verifyConsistency(previous.size, checkpoint.size, oldRoot, checkpoint.rootHash, proof)) {
      throw inconsistent(
        `the peer's audit log of village ${vid} at ${checkpoint.size} rows does not extend the one it showed at ${previous.size} rows: it rewrote its history`,
      );
    }
  }
  return {
    status: "checked",
    nodeKey: key,
    checkpoint: { size: checkpoint.size, root_hash: encodeBase64(checkpoint.rootHash), note, at: nowIso() },
  };
}
