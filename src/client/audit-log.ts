/**
 * Checking another node's audit log of a village (what `links peers sync` runs on every pass):
 * fetch its newest checkpoint, verify it with the peer's node key (pinned by the caller on first
 * use, from `fetchNodeKey`), and when we kept an earlier checkpoint of that peer, fetch a
 * consistency proof from it and verify it. The new checkpoint is returned for the caller to keep.
 *
 * Failures: `remote_error` for an answer that is too large or not what the protocol says;
 * `invalid_signature` for a checkpoint not signed by the pinned key, or of another log;
 * `audit_inconsistent` when the peer's history is not an extension of the one it showed before
 * (it rewrote its history).
 */
import { checkpointOrigin, NODE_NAME_RE } from "../core/audit-origin.ts";
import { decodeBase64, encodeBase64 } from "../core/base64.ts";
import { sha256Hex } from "../core/canonical.ts";
import { LinksError } from "../core/errors.ts";
import { HASH_BYTES, hashesEqual, verifyConsistency } from "../core/merkle.ts";
import { NOTE_MAX_BYTES, openCheckpoint, type Checkpoint } from "../core/signed-note.ts";
import type { Remote } from "./remote.ts";

export const AUDIT_CLIENT_LIMITS = {
  nodeBytes: 4 * 1024,
  checkpointBytes: NOTE_MAX_BYTES,
  proofBytes: 16 * 1024,
  /** a consistency proof of trees up to 2^53 leaves has fewer hashes than this */
  proofHashes: 2 * 53 + 2,
};

/** The peer's node key as pinned on first use. */
export interface PinnedNodeKey {
  name: string;
  publicKey: Uint8Array;
}

export interface NodeKeyAnswer extends PinnedNodeKey {
  /** sha256 of the public key, hex */
  keyHash: string;
}

/** A checkpoint of the peer's village log, as kept between passes. */
export interface PeerCheckpoint {
  origin: string;
  size: number;
  /** base64 */
  root_hash: string;
  /** the signed note as the peer served it */
  note: string;
}

function malformed(what: string): LinksError {
  return new LinksError("remote_error", `the node's answer is malformed: ${what}`);
}

/** GET /.well-known/links/node, every field checked (the key hash must be the key's). */
export async function fetchNodeKey(remote: Remote): Promise<NodeKeyAnswer> {
  const res = await remote.request("GET", "/.well-known/links/node", { maxBytes: AUDIT_CLIENT_LIMITS.nodeBytes });
  const body = res.body as Record<string, unknown> | null;
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw malformed("/.well-known/links/node is not a JSON object");
  const { name, public_key, key_hash } = body;
  if (typeof name !== "string" || !NODE_NAME_RE.test(name)) throw malformed("the node name is missing or not a node name");
  const publicKey = typeof public_key === "string" ? decodeBase64(public_key) : null;
  if (publicKey === null || publicKey.length !== 32) throw malformed("public_key is not base64 of 32 bytes");
  if (key_hash !== sha256Hex(publicKey)) throw malformed("key_hash is not the sha256 of public_key");
  return { name, publicKey, keyHash: key_hash };
}

function toKept(c: Checkpoint, note: string): PeerCheckpoint {
  return { origin: c.origin, size: c.size, root_hash: encodeBase64(c.rootHash), note };
}

/** Opens a checkpoint note with the pinned key; it must be the log of this village on that node. */
function openPeerCheckpoint(note: string, villageId: string, pinned: PinnedNodeKey): Checkpoint {
  const c = openCheckpoint(note, pinned);
  const origin = checkpointOrigin(pinned.name, villageId);
  if (c.origin !== origin) throw new LinksError("invalid_signature", `the checkpoint is of another log than ${origin}`);
  return c;
}

async function fetchCheckpoint(remote: Remote, villageId: string, pinned: PinnedNodeKey): Promise<PeerCheckpoint> {
  const res = await remote.request("GET", `/villages/${villageId}/audit/checkpoint`, {
    headers: { accept: "text/plain" },
    maxBytes: AUDIT_CLIENT_LIMITS.checkpointBytes,
  });
  let note: string;
  try {
    note = new TextDecoder("utf-8", { fatal: true }).decode(res.bytes);
  } catch {
    throw malformed("the checkpoint is not UTF-8 text");
  }
  let c: Checkpoint;
  try {
    c = openPeerCheckpoint(note, villageId, pinned);
  } catch (e) {
    if (e instanceof LinksError && e.code === "invalid_checkpoint") throw malformed(e.message);
    throw e;
  }
  return toKept(c, note);
}

async function fetchConsistencyProof(remote: Remote, villageId: string, from: number, to: number): Promise<Uint8Array[]> {
  const res = await remote.request("GET", `/villages/${villageId}/audit/proof/consistency?from=${from}&to=${to}`, {
    maxBytes: AUDIT_CLIENT_LIMITS.proofBytes,
  });
  const hashes = (res.body as { hashes?: unknown } | null)?.hashes;
  if (!Array.isArray(hashes) || hashes.length > AUDIT_CLIENT_LIMITS.proofHashes) throw malformed("the consistency proof has no hashes array of a sane length");
  return hashes.map((h, i) => {
    const bytes = typeof h === "string" ? decodeBase64(h) : null;
    if (bytes === null || bytes.length !== HASH_BYTES) throw malformed(`hash ${i} of the consistency proof is not base64 of 32 bytes`);
    return bytes;
  });
}

/**
 * The peer's newest checkpoint of the village's log, verified with the pinned key and, given the
 * last one kept for that peer, proved to extend it.
 */
export async function checkPeerAudit(remote: Remote, villageId: string, pinned: PinnedNodeKey, last: PeerCheckpoint | null): Promise<PeerCheckpoint> {
  let before: Checkpoint | null = null;
  if (last !== null) {
    try {
      before = openPeerCheckpoint(last.note, villageId, pinned);
    } catch (e) {
      throw new LinksError("invalid_argument", `the checkpoint kept for this peer is not one of its signed checkpoints of village ${villageId} (${(e as Error).message})`);
    }
  }
  const now = await fetchCheckpoint(remote, villageId, pinned);
  if (before === null) return now;
  const nowRoot = decodeBase64(now.root_hash) as Uint8Array;
  const origin = now.origin;
  if (now.size < before.size) {
    throw new LinksError("audit_inconsistent", `${origin} went back from ${before.size} to ${now.size} rows: the peer rewrote its audit history`);
  }
  if (now.size === before.size) {
    if (hashesEqual(nowRoot, before.rootHash)) return now;
    throw new LinksError("audit_inconsistent", `${origin} signed two different trees of ${now.size} rows: the peer rewrote its audit history`);
  }
  const proof = await fetchConsistencyProof(remote, villageId, before.size, now.size);
  if (!verifyConsistency(before.size, now.size, before.rootHash, nowRoot, proof)) {
    throw new LinksError("audit_inconsistent", `${origin} at ${now.size} rows does not extend its checkpoint of ${before.size} rows: the peer rewrote its audit history`);
  }
  return now;
}
