/**
 * Applying policies to a village: village.json replaced under its lock, one history row per
 * policy (the village's chain: each names the head it replaced and keeps the artifact), the
 * chain's memory kept beside it, every change audited. Local CLI, HTTP and pull all end here, and
 * every signed artifact is decided by core/policy-rules under the lock.
 */
import { assertMaxDepth, INPUT_MAX_DEPTH, toJsonText, type JsonValue } from "../core/canonical.ts";
import { laterOf, stampAfter } from "../core/chain-time.ts";
import { nowIso } from "../core/datetime.ts";
import { LinksError } from "../core/errors.ts";
import { admitRun, type Admitted } from "../core/policy-rules.ts";
import { policyHash, policyUpdateToJson, unsignedUpdateJson, type PolicyUpdate } from "../core/policy-update.ts";
import { assertNoLockout, assertPolicySize, auditPolicyHash, readPolicy, type PolicyObject, type VillagePolicy } from "../core/village-policy.ts";
import { appendAudit, type AuditEntry } from "./audit.ts";
import { lockedAppend } from "./jsonl.ts";
import type { DataPaths } from "./paths.ts";
import { chainState, currentHead, headUnderLock, writeHead } from "./policy-head.ts";
import { entryTime, type ChainEntry, type PolicyHistoryRow, type PolicySource } from "./policy-history.ts";
import { readVillage, updateVillage, withPolicy, type Village } from "./villages.ts";

export { policyChain, readPolicyHistory, type ChainEntry, type PolicyHistoryRow, type PolicySource } from "./policy-history.ts";

export interface ApplyResult {
  /** "unchanged": the policy given is the one in force; nothing was written */
  status: "applied" | "unchanged";
  policy_hash: string;
  previous_policy_hash: string;
}

interface Change {
  policy: PolicyObject;
  /** the decided artifact; null for a plain change */
  admitted: Admitted | null;
}

interface RecordOptions {
  actor: string | null;
  source: PolicySource;
}

/**
 * Applies a plain policy (no artifact) given by an operator. `authorize` runs under the village
 * lock against the policy in force and throws to refuse. The policy in force given again is
 * "unchanged": no history row, no audit row.
 */
export function applyPlainPolicy(
  paths: DataPaths,
  vid: string,
  policy: PolicyObject,
  opts: RecordOptions & { authorize?: (current: VillagePolicy) => void },
): ApplyResult {
  readPolicy(policy);
  const hash = policyHash(policy);
  return updateVillage<ApplyResult>(paths, vid, (village) => {
    opts.authorize?.(readPolicy(village.policy));
    const previous = policyHash(village.policy);
    if (hash === previous) return { village, result: { status: "unchanged", policy_hash: hash, previous_policy_hash: previous } };
    const updated = record(paths, village, [{ policy, admitted: null }], opts);
    return { village: updated, result: { status: "applied", policy_hash: hash, previous_policy_hash: previous } };
  });
}

/**
 * Applies one signed artifact given by an operator (HTTP with a manage token, or apply-local):
 * decided by the policy rules under the village lock. Quorum is needed where the village
 * requires signed policy.
 */
export function applySignedUpdate(paths: DataPaths, vid: string, update: PolicyUpdate, opts: RecordOptions & { now: number }): ApplyResult {
  return updateVillage<ApplyResult>(paths, vid, (village) => {
    const previous = policyHash(village.policy);
    const [admitted] = admitRun([update], chainState(paths, village, headUnderLock(paths, vid)), { now: opts.now });
    const updated = record(paths, village, [{ policy: update.policy, admitted: admitted as Admitted }], opts);
    return { village: updated, result: { status: "applied", policy_hash: update.policy_hash, previous_policy_hash: previous } };
  });
}

/**
 * Decides a pulled run against the village as it is now, without the lock: the check a pull makes
 * before it asks for the lock. Pulled updates always need allowlisted signers.
 */
export function checkPolicyRun(paths: DataPaths, vid: string, updates: PolicyUpdate[], opts: { now: number }): Admitted[] {
  const village = readVillage(paths, vid);
  return admitRun(updates, chainState(paths, village, currentHead(paths, vid)), { now: opts.now, requireSigners: true });
}

/**
 * Applies a run of signed updates pulled from another node, all or nothing: the run is decided
 * again under the lock against the chain as it is then.
 */
export function applyPolicyRun(paths: DataPaths, vid: string, updates: PolicyUpdate[], opts: { actor: string; now: number }): { applied: number; head: string } {
  return updateVillage(paths, vid, (village) => {
    const state = chainState(paths, village, headUnderLock(paths, vid));
    const admitted = admitRun(updates, state, { now: opts.now, requireSigners: true });
    if (admitted.length === 0) return { village, result: { applied: 0, head: state.headHash } };
    const changes = admitted.map((a) => ({ policy: a.update.policy, admitted: a }));
    const updated = record(paths, village, changes, { actor: opts.actor, source: "pull" });
    return { village: updated, result: { applied: admitted.length, head: policyHash(updated.policy) } };
  });
}

/**
 * Edits the policy in force, under the village lock (so concurrent edits never lose one
 * another), and records the result like any other local change. `edit` returns the new policy,
 * or null to leave it as it is.
 */
export function editPolicy(
  paths: DataPaths,
  vid: string,
  edit: (current: PolicyObject) => PolicyObject | null,
  opts: { actor: string | null },
): { changed: boolean; policy_hash: string } {
  return updateVillage<{ changed: boolean; policy_hash: string }>(paths, vid, (village) => {
    const next = edit(village.policy);
    if (next === null) return { village, result: { changed: false, policy_hash: policyHash(village.policy) } };
    readPolicy(next);
    const updated = record(paths, village, [{ policy: next, admitted: null }], { actor: opts.actor, source: "local" });
    return { village: updated, result: { changed: true, policy_hash: policyHash(next) } };
  });
}

/** Records a new village's first policy as the start of its chain. */
export function recordGenesis(paths: DataPaths, village: Village, actor: string): void {
  record(paths, village, [{ policy: village.policy, admitted: null }], { actor, source: "create" }, null);
}

/**
 * Writes history rows, the chain's memory and audit rows for changes applied in order; returns
 * the new village. `start` is the head the first change replaces (null for a village's first
 * policy). The caller holds the village lock.
 */
function record(paths: DataPaths, village: Village, changes: Change[], opts: RecordOptions, start: string | null = policyHash(village.policy)): Village {
  const vid = village.village_id;
  const memory = headUnderLock(paths, vid);
  let head = start;
  let last: ChainEntry | null = memory.last;
  let newest = memory.newest_artifact_at;
  const rows: PolicyHistoryRow[] = [];
  const audits: AuditEntry[] = [];
  const payloads: string[] = [];
  for (const { policy, admitted } of changes) {
    // An artifact's policy was judged by admitUpdate (size, quorum, lockout). A plain policy is
    // published inside an artifact: it must fit in one another node accepts, and, but for a
    // village's first (the operator's `villages create`), leave the village a way out.
    if (admitted === null) {
      assertPolicySize(policy);
      assertMaxDepth(policy, "policy", INPUT_MAX_DEPTH - 1);
      const typed = readPolicy(policy);
      if (opts.source !== "create") assertNoLockout(typed);
    }
    const hash = policyHash(policy);
    const ts = nowIso();
    let artifact: JsonValue;
    if (admitted) {
      artifact = policyUpdateToJson(admitted.update);
      payloads.push(admitted.payloadHash);
      newest = laterOf(newest, admitted.update.created_at);
    } else {
      const createdAt = stampAfter(last ? entryTime(last) : null, ts);
      artifact = unsignedUpdateJson({ villageId: vid, policy, policyHash: hash, actor: opts.actor, previousPolicyHash: head, createdAt });
    }
    const signed = admitted !== null;
    rows.push({
      policy,
      policy_hash: hash,
      previous_policy_hash: head,
      actor: opts.actor,
      ts,
      source: opts.source,
      signed,
      signers: admitted?.signers ?? [],
      artifact,
    });
    last = { policy_hash: hash, previous_policy_hash: head, signed, artifact };
    audits.push({
      action: "policy.apply",
      village_id: vid,
      actor: opts.actor,
      reason: signed ? `signed update (${opts.source})` : `unsigned change (${opts.source})`,
      policy_hash: auditPolicyHash(policy),
    });
    head = hash;
  }
  if (rows.length === 0) throw new LinksError("internal_error", "record() needs at least one change");
  const updated = withPolicy(village, (changes[changes.length - 1] as Change).policy);
  lockedAppend(paths.policyHistoryFile(vid), rows.map((r) => toJsonText(r as unknown as JsonValue)));
  const before = memory.last && !rows.some((r) => r.policy_hash === memory.last?.policy_hash) ? memory.last : null;
  writeHead(paths, vid, { entries: memory.entries + rows.length, newest_artifact_at: newest, last, before }, payloads);
  appendAudit(paths, ...audits);
  return updated;
}
