/**
 * Pull-based policy reconciliation: fetch another node's chain after our head, decide every
 * update by the policy rules, apply the whole run atomically, or refuse and change nothing.
 *
 * Two kinds of node answer `GET /policy/updates`: a `links` node with `{updates, next_cursor,
 * head}` pages of the run after our head, in chain order; a Python Links v0.15 node with one JSON
 * array of every update it stored after `since` (or `[]` when it does not hold `since`), sorted by
 * time. From an array the run is found by lineage (core/policy-chain.ts), asking once more
 * without `since` when the filtered array holds no path. Either way the run then goes through
 * exactly the same checks.
 */
import { SHA256_HEX_RE, type JsonValue } from "../core/canonical.ts";
import { LinksError } from "../core/errors.ts";
import { runByLineage } from "../core/policy-chain.ts";
import { normalizePolicyUpdate, policyHash, previousPolicyHash, type PolicyUpdate } from "../core/policy-update.ts";
import { VILLAGE_ID_RE, type DataPaths } from "../storage/paths.ts";
import { applyPolicyRun, checkPolicyRun, policyChain } from "../storage/policy.ts";
import { readVillage, type Village } from "../storage/villages.ts";
import { CLIENT_DEFAULTS, REMOTE_CURSOR_RE, type Remote } from "./remote.ts";

export interface PullReport {
  /** older: the node is at a policy we had before ours (only with `olderRemote: "report"`) */
  status: "aligned" | "behind" | "applied" | "older";
  village_id: string;
  local_head: string;
  remote_head: string;
  updates: number;
}

const PAGE = 100;
const MAX_UPDATES = 10_000;

/** The local village, or village_not_found saying it is the local one that is missing. */
export function readLocalVillage(paths: DataPaths, vid: string): Village {
  try {
    return readVillage(paths, vid);
  } catch (e) {
    if (e instanceof LinksError && e.code === "village_not_found") {
      throw new LinksError("village_not_found", `village ${JSON.stringify(vid)} does not exist locally (data directory ${paths.root})`);
    }
    throw e;
  }
}

/** Runs a request to another node; its village_not_found says it is the remote one that is missing. */
export async function onRemote<T>(remote: Remote, vid: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof LinksError && e.code === "village_not_found") {
      throw new LinksError("village_not_found", `the node ${remote.baseUrl} has no village ${JSON.stringify(vid)}`, { status: e.status });
    }
    throw e;
  }
}

export async function remoteHead(remote: Remote, vid: string, localHead: string): Promise<{ hash: string; same: boolean }> {
  const res = await onRemote(remote, vid, () =>
    remote.request("GET", `/villages/${vid}/policy/latest`, {
      headers: { "if-none-match": `"${localHead}"` },
      accept: [304],
      maxBytes: CLIENT_DEFAULTS.policyHeadBytes,
    }),
  );
  if (res.status === 304) return { hash: localHead, same: true };
  const hash = (res.body as { policy_hash?: unknown } | null)?.policy_hash;
  if (typeof hash !== "string") throw new LinksError("remote_error", "the node's policy/latest answer has no policy_hash");
  if (!SHA256_HEX_RE.test(hash)) throw new LinksError("remote_error", "the node's policy/latest answer has a policy_hash that is not 64 hex characters");
  return { hash, same: hash === localHead };
}

/** An update's hashes are hashes, and its village id an id, before anything compares or prints them. */
function checkedFields(update: PolicyUpdate, n: number): PolicyUpdate {
  const previous = previousPolicyHash(update);
  if (!SHA256_HEX_RE.test(update.policy_hash) || (previous !== null && !SHA256_HEX_RE.test(previous))) {
    throw new LinksError("remote_error", `the node's update ${n} has a policy_hash or previous_policy_hash that is not 64 lowercase hex characters`);
  }
  if (!VILLAGE_ID_RE.test(update.village_id)) {
    throw new LinksError("remote_error", `the node's update ${n} has a village_id that is not a village id`);
  }
  return update;
}

function normalizeAll(items: JsonValue[]): PolicyUpdate[] {
  if (items.length > MAX_UPDATES) throw new LinksError("remote_error", `the node sent more than ${MAX_UPDATES} updates`);
  return items.map((u, i) => checkedFields(normalizePolicyUpdate(u), i + 1));
}

type Answer = { kind: "links"; updates: PolicyUpdate[]; nextCursor: string | null } | { kind: "array"; updates: PolicyUpdate[] };

async function fetchUpdates(remote: Remote, vid: string, query: URLSearchParams): Promise<Answer> {
  const res = await onRemote(remote, vid, () => remote.request("GET", `/villages/${vid}/policy/updates?${query}`));
  if (Array.isArray(res.body)) return { kind: "array", updates: normalizeAll(res.body) };
  const body = res.body as { updates?: JsonValue[]; next_cursor?: unknown } | null;
  if (!body || typeof body !== "object" || !Array.isArray(body.updates)) {
    throw new LinksError("remote_error", "the node's policy/updates answer is neither an updates page nor an array of updates");
  }
  const cursor = body.next_cursor ?? null;
  if (cursor !== null && (typeof cursor !== "string" || !REMOTE_CURSOR_RE.test(cursor))) {
    throw new LinksError("remote_error", "the node's policy/updates answer has a next_cursor that is not a cursor (base64url, at most 256 characters)");
  }
  return { kind: "links", updates: normalizeAll(body.updates), nextCursor: cursor };
}

/** A `links` node: every page of the run after `since`, following its cursors. */
async function restOfPages(remote: Remote, vid: string, since: string, first: Answer & { kind: "links" }): Promise<PolicyUpdate[]> {
  const out = [...first.updates];
  let page = first;
  while (page.nextCursor) {
    // a page that brings nothing but another cursor would page forever
    if (page.updates.length === 0) throw new LinksError("remote_error", "the node sent an empty page of updates with a next_cursor");
    const next = await fetchUpdates(remote, vid, new URLSearchParams({ since, limit: String(PAGE), cursor: page.nextCursor }));
    if (next.kind !== "links") throw new LinksError("remote_error", "the node changed the shape of its policy/updates answer between pages");
    out.push(...next.updates);
    if (out.length > MAX_UPDATES) throw new LinksError("remote_error", `the node sent more than ${MAX_UPDATES} updates`);
    page = next;
  }
  return out;
}

/** Why there is no run from our head to the node's: it is at an earlier policy of ours, or the histories split. */
function noPath(older: boolean, localHead: string, remote: string): LinksError {
  if (older) {
    return new LinksError("policy_rollback", `the node's policy ${remote} is older than ours (${localHead}): refusing a rollback or replay`);
  }
  return new LinksError(
    "policy_divergence",
    `the node's history does not contain our policy ${localHead}: the two histories diverged (a change made on one side only)`,
  );
}

/** The run of updates that leads from our head to the node's; null when the node has none from our head. */
async function remoteRun(remote: Remote, vid: string, localHead: string, remoteHeadHash: string): Promise<PolicyUpdate[] | null> {
  let first: Answer;
  try {
    first = await fetchUpdates(remote, vid, new URLSearchParams({ since: localHead, limit: String(PAGE) }));
  } catch (e) {
    if (e instanceof LinksError && e.code === "unknown_policy_hash") return null;
    throw e;
  }
  if (first.kind === "array") {
    return (
      runByLineage(first.updates, remoteHeadHash, localHead) ??
      runByLineage((await fetchUpdates(remote, vid, new URLSearchParams({ limit: String(PAGE) }))).updates, remoteHeadHash, localHead)
    );
  }
  const updates = await restOfPages(remote, vid, localHead, first);
  if (updates.length === 0 || updates[updates.length - 1]?.policy_hash !== remoteHeadHash) {
    throw new LinksError("policy_lineage", `the node's updates after ${localHead} do not end at its head ${remoteHeadHash}`);
  }
  return updates;
}

/**
 * `olderRemote: "report"` (a sync pass) answers status "older" for a node at a policy we had
 * before ours, which has not caught up with us yet; by default that is refused as a rollback.
 * Any other rollback (an update dated before our newest one, a replay) is refused either way.
 */
export async function pullPolicy(
  remote: Remote,
  paths: DataPaths,
  vid: string,
  opts: { apply: boolean; now?: number; olderRemote?: "refuse" | "report" },
): Promise<PullReport> {
  const now = opts.now ?? Date.now();
  const village = readLocalVillage(paths, vid);
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
  const updates = await remoteRun(remote, vid, localHead, head.hash);
  if (updates === null) {
    const older = policyChain(paths, vid).some((c) => c.policy_hash === head.hash);
    if (older && opts.olderRemote === "report") return report("older", 0);
    throw noPath(older, localHead, head.hash);
  }
  checkPolicyRun(paths, vid, updates, { now });
  if (!opts.apply) return report("behind", updates.length);
  const applied = applyPolicyRun(paths, vid, updates, { actor: `pull:${remote.baseUrl}`, now });
  return report("applied", applied.applied);
}
