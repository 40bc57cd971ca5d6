/**
 * The check of a peer's audit log on every sync pass, and the one place a pass calls it:
 *
 * 1. the peer's node key (`GET /.well-known/links/node`) is pinned on first contact; a different
 *    key (or name) later refuses the pass (`node_key_changed`), and a peer that published a key
 *    and stops is refused too (`audit_inconsistent`). A peer that never published one (an older
 *    node, Python Links) is synced without the check, and its status says so.
 * 2. the village's newest checkpoint must verify with the pinned key and extend the checkpoint
 *    kept from the last pass (the audit-log client: `audit_inconsistent` when the peer rewrote
 *    the history it showed us).
 *
 * What it returns is kept by the caller for the next pass.
 */
import { checkPeerAudit, fetchNodeKey } from "../client/audit-log.ts";
import { encodeBase64 } from "../core/base64.ts";
import { nowIso } from "../core/datetime.ts";
import { isLinksError, LinksError } from "../core/errors.ts";
import type { PeerRemote } from "./peer-remote.ts";
import type { KeptPeerCheckpoint, NodeKeyRecord } from "./state.ts";

export type PeerLogCheck =
  | { status: "checked"; nodeKey: NodeKeyRecord; checkpoint: KeptPeerCheckpoint }
  | { status: "unavailable" };

export async function checkPeerLog(remote: PeerRemote, vid: string, pinned: NodeKeyRecord | null, kept: KeptPeerCheckpoint | null): Promise<PeerLogCheck> {
  let answer;
  try {
    answer = await fetchNodeKey(remote);
  } catch (e) {
    if (!isLinksError(e) || e.status !== 404) throw e;
    if (pinned === null) return { status: "unavailable" };
    throw new LinksError("audit_inconsistent", `the peer published node key ${pinned.key_hash} (${pinned.name}) before and now publishes none: its audit log can no longer be checked`);
  }
  const key: NodeKeyRecord = { name: answer.name, public_key: encodeBase64(answer.publicKey), key_hash: answer.keyHash };
  if (pinned !== null && (pinned.public_key !== key.public_key || pinned.name !== key.name)) {
    throw new LinksError(
      "node_key_changed",
      `the peer's node key changed: pinned ${pinned.key_hash} (${pinned.name}), now ${key.key_hash} (${key.name}). ` +
        "If the peer's operator really replaced it, remove the peer and add it again to pin the new key",
    );
  }
  const checkpoint = await checkPeerAudit(remote, vid, { name: answer.name, publicKey: answer.publicKey }, pinned === null ? null : kept);
  return { status: "checked", nodeKey: key, checkpoint: { ...checkpoint, at: nowIso() } };
}
