/**
 * Pull-based policy reconciliation: fetch another node's chain after our head, check every
 * update, apply the whole run atomically, or refuse and change nothing.
 */
import { SHA256_HEX_RE, type JsonValue } from "../core/canonical.ts";
import { LinksError } from "../core/errors.ts";
import { checkRun } from "../core/policy-chain.ts";
import { normalizePolicyUpdate, policyHash, type PolicyUpdate } from "../core/policy-update.ts";
import type { DataPaths } from "../storage/paths.ts";
import { applyPolicyRun, policyChain } from "../storage/policy.ts";
import { readVillage } from "../storage/villages.ts";
import { CLIENT_DEFAULTS, type Remote } from "./remote.ts";

export interface PullReport {
  status: "aligned" | "behind" | "applied";
  village_id: string;
  local_head: string;
  remote_head: string;
  updates: number;
}

const PAGE = 100;
const MAX_UPDATES = 10_000;
/** what a cursor this node hands out looks like (base64url, short); anything else is not followed */
const CURSOR_RE = /^[A-Za-z0-9_-]{1,256}$/;

export async function remoteHead(remote: Remote, vid: string, localHead: string): Promise<{ hash: string; same: boolean }> {
  const res = await remote.request("GET", `/villages/${vid}/policy/latest`, {
    headers: { "if-none-match": `"${localHead}"` },
    accept: [304],
    maxBytes: CLIENT_DEFAULTS.policyHeadBytes,
  });
  if (res.status === 304) return { hash: localHead, same: true };
  const hash = (res.body as { policy_hash?: unknown } | null)?.policy_hash;
  if (typeof hash !== "string" || !SHA256_HEX_RE.test(hash)) {
    throw new LinksError("remote_error", "the node's policy/latest answer has no policy_hash (64 lowercase hex characters)");
  }
  return { hash, same: hash === localHead };
}

/** An update's hashes are hashes, and its village id an id, before anything compares or prints them. */
function checkedFields(update: PolicyUpdate, n: number): PolicyUpdate {
  const previous = update.generation === "v2" ? update.previous_policy_hash : null;
  if (!SHA256_HEX_RE.test(update.policy_hash) || (previous !== null && !SHA256_HEX_RE.test(previous))) {
    throw new LinksError("remote_error", `the node's update ${n} has a policy_hash or previous_policy_hash that is not 64 lowercase hex characters`);
  }
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(update.village_id)) {
    throw new LinksError("remote_error", `the node's update ${n} has a village_id that is not a village id`);
  }
  return update;
}

/** Every update after `since` on the remote, following its cursors. */
async function updatesSince(remote: Remote, vid: string, since: string): Promise<PolicyUpdate[]> {
  const out: PolicyUpdate[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ since, limit: String(PAGE) });
    if (cursor) query.set("cursor", cursor);
    const res = await remote.request("GET", `/villages/${vid}/policy/updates?${query}`);
    const body = res.body as { updates?: JsonValue[]; next_cursor?: unknown } | null;
    if (!body || !Array.isArray(body.updates)) throw new LinksError("remote_error", "the node's policy/updates answer has no updates array");
    for (const u of body.updates) out.push(checkedFields(normalizePolicyUpdate(u), out.length + 1));
    if (body.next_cursor !== null && body.next_cursor !== undefined && (typeof body.next_cursor !== "string" || !CURSOR_RE.test(body.next_cursor))) {
      throw new LinksError("remote_error", "the node's policy/updates answer has a next_cursor that is not a cursor (base64url, at most 256 characters)");
    }
    cursor = body.next_cursor ?? null;
    // a page that brings nothing but another cursor would page forever
    if (cursor && body.updates.length === 0) throw new LinksError("remote_error", "the node sent an empty page of updates with a next_cursor");
    if (out.length > MAX_UPDATES) throw new LinksError("remote_error", `the node sent more than ${MAX_UPDATES} updates`);
  } while (cursor);
  return out;
}

export async function pullPolicy(remote: Remote, paths: DataPaths, vid: string, opts: { apply: boolean; now?: number }): Promise<PullReport> {
  const now = opts.now ?? Date.now();
  const village = readVillage(paths, vid);
  const localHead = policyHash(village.policy);
  const head = await remoteHead(remote, vid, localHead);
  const report = (status: PullReport["status"], updates: number): PullReport => ({
    status,
    village_id: vid,
    local_head: localHead,
    remote_head: head.hash,
    updates,
  });
  if (head.same) return report("aligned", 0);

  let updates: PolicyUpdate[];
  try {
    updates = await updatesSince(remote, vid, localHead);
  } catch (e) {
    if (!(e instanceof LinksError) || e.code !== "unknown_policy_hash") throw e;
    const ours = policyChain(paths, vid).map((c) => c.policy_hash);
    if (ours.includes(head.hash)) {
      throw new LinksError("policy_rollback", `the node's policy ${head.hash} is older than ours (${localHead}): refusing a rollback or replay`);
    }
    throw new LinksError(
      "policy_divergence",
      `the node's history does not contain our policy ${localHead}: the two histories diverged (a change made on one side only)`,
    );
  }
  if (updates.length === 0 || updates[updates.length - 1]?.policy_hash !== head.hash) {
    throw new LinksError("policy_lineage", `the node's updates after ${localHead} do not end at its head ${head.hash}`);
  }
  checkRun({ villageId: vid, headHash: localHead, headPolicy: village.policy, now }, updates);
  if (!opts.apply) return report("behind", updates.length);
  const applied = applyPolicyRun(paths, vid, updates, { actor: `pull:${remote.baseUrl}`, now });
  return report("applied", applied.applied);
}
