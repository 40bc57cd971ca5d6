/**
 * Applying policies to a village: village.json replaced under its lock, one history row per
 * policy (the village's chain: each names the head it replaced and keeps the artifact), every
 * change audited. Local CLI, HTTP and pull all end here.
 */
import { assertMaxDepth, INPUT_MAX_DEPTH, parseStored, toJsonText, type JsonValue } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { LinksError } from "../core/errors.ts";
import { checkRun } from "../core/policy-chain.ts";
import {
  newPolicyUpdate,
  policyHash,
  policyUpdateToJson,
  type PolicyUpdate,
} from "../core/policy-update.ts";
import { auditPolicyHash, readPolicy, type PolicyObject, type VillagePolicy } from "../core/village-policy.ts";
import { appendAudit, type AuditEntry } from "./audit.ts";
import { lockedAppend, readJsonl } from "./jsonl.ts";
import type { DataPaths } from "./paths.ts";
import { updateVillage, withPolicy, type Village } from "./villages.ts";

export type PolicySource = "create" | "local" | "remote" | "pull";

export interface PolicyHistoryRow {
  policy: PolicyObject;
  policy_hash: string;
  previous_policy_hash: string | null;
  actor: string | null;
  ts: string;
  source: PolicySource | string;
  /** true when the artifact carries signatures that verified when it was applied */
  signed: boolean;
  signers: string[];
  /** the artifact as received; for an unsigned change, an unsigned v2 artifact made here */
  artifact: JsonValue;
}

export interface PolicyChange {
  policy: PolicyObject;
  artifact: PolicyUpdate | null;
  signers?: string[];
}

export interface ApplyOptions {
  actor: string | null;
  source: PolicySource;
  /** Runs under the village lock against the policy in force; throws to refuse. */
  authorize?: (current: VillagePolicy, next: VillagePolicy, currentHash: string) => void;
}

export function applyPolicy(
  paths: DataPaths,
  vid: string,
  change: PolicyChange & ApplyOptions,
): { policy_hash: string; previous_policy_hash: string } {
  const next = readPolicy(change.policy);
  return updateVillage(paths, vid, (village) => {
    const previous = policyHash(village.policy);
    const claimed = change.artifact?.generation === "v2" ? change.artifact.previous_policy_hash : null;
    if (claimed !== null && claimed !== previous) {
      throw new LinksError(
        "policy_lineage",
        `the update follows policy ${claimed}, but this village's policy is ${previous}; export a new update from the current policy`,
      );
    }
    change.authorize?.(readPolicy(village.policy), next, previous);
    const updated = record(paths, village, [change], change);
    return { village: updated, result: { policy_hash: policyHash(change.policy), previous_policy_hash: previous } };
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
    const updated = record(paths, village, [{ policy: next, artifact: null }], { actor: opts.actor, source: "local" });
    return { village: updated, result: { changed: true, policy_hash: policyHash(next) } };
  });
}

/**
 * Applies a run of signed updates pulled from another node, all or nothing: the run is checked
 * again under the lock against the head in force then (lineage, signatures, quorum, expiry).
 */
export function applyPolicyRun(paths: DataPaths, vid: string, updates: PolicyUpdate[], opts: { actor: string; now: number }): { applied: number; head: string } {
  return updateVillage(paths, vid, (village) => {
    const checked = checkRun(
      { villageId: vid, headHash: policyHash(village.policy), headPolicy: village.policy, now: opts.now },
      updates,
    );
    if (checked.length === 0) return { village, result: { applied: 0, head: policyHash(village.policy) } };
    const changes = checked.map((c) => ({ policy: c.update.policy, artifact: c.update, signers: c.signers }));
    const updated = record(paths, village, changes, { actor: opts.actor, source: "pull" });
    return { village: updated, result: { applied: checked.length, head: policyHash(updated.policy) } };
  });
}

/**
 * Writes history rows and audit rows for changes applied in order; returns the new village.
 * `start` is the head the first change replaces (null for a village's first policy).
 */
function record(
  paths: DataPaths,
  village: Village,
  changes: PolicyChange[],
  opts: ApplyOptions,
  start: string | null = policyHash(village.policy),
): Village {
  const vid = village.village_id;
  let head = start;
  const rows: PolicyHistoryRow[] = [];
  const audits: AuditEntry[] = [];
  for (const change of changes) {
    readPolicy(change.policy);
    // A plain policy is published inside an artifact: it must fit in one another node accepts.
    if (change.artifact === null) assertMaxDepth(change.policy, "policy", INPUT_MAX_DEPTH - 1);
    const hash = policyHash(change.policy);
    const ts = nowIso();
    const artifact =
      change.artifact ?? newPolicyUpdate({ villageId: vid, policy: change.policy, actor: opts.actor, previousPolicyHash: head, createdAt: ts });
    const signed = (change.signers ?? []).length > 0;
    rows.push({
      policy: change.policy,
      policy_hash: hash,
      previous_policy_hash: head,
      actor: opts.actor,
      ts,
      source: opts.source,
      signed,
      signers: change.signers ?? [],
      artifact: policyUpdateToJson(artifact),
    });
    audits.push({
      action: "policy.apply",
      village_id: vid,
      actor: opts.actor,
      reason: signed ? `signed update (${opts.source})` : `unsigned change (${opts.source})`,
      policy_hash: auditPolicyHash(change.policy),
    });
    head = hash;
  }
  const last = changes[changes.length - 1] as PolicyChange;
  const updated = withPolicy(village, last.policy);
  lockedAppend(paths.policyHistoryFile(vid), rows.map((r) => toJsonText(r as unknown as JsonValue)));
  appendAudit(paths, ...audits);
  return updated;
}

/** Records a new village's first policy as the start of its chain. */
export function recordGenesis(paths: DataPaths, village: Village, actor: string): void {
  record(paths, village, [{ policy: village.policy, artifact: null }], { actor, source: "create" }, null);
}

export function readPolicyHistory(paths: DataPaths, vid: string): PolicyHistoryRow[] {
  return readJsonl(paths.policyHistoryFile(vid), (line) => {
    const v = parseStored(line) as unknown as PolicyHistoryRow;
    if (typeof v !== "object" || v === null || typeof v.policy !== "object") throw new Error("not a policy history row");
    return v;
  });
}

export interface ChainEntry {
  policy_hash: string;
  previous_policy_hash: string | null;
  signed: boolean;
  artifact: JsonValue;
}

/**
 * The chain as published: one entry per history row. Rows written by Python Links hold only
 * the policy; they get an unsigned artifact so the chain reads the same either way. An entry's
 * hash is always computed from the row's policy: Python Links stored the policy after filling in
 * defaults (what village.json holds) beside the hash of the policy as sent, so its `policy_hash`
 * need not be the hash of the policy the village actually took.
 */
export function policyChain(paths: DataPaths, vid: string): ChainEntry[] {
  return readPolicyHistory(paths, vid).map((row) => {
    const hash = policyHash(row.policy);
    const artifact = row.artifact ?? policyUpdateToJson(newPolicyUpdate({ villageId: vid, policy: row.policy, actor: row.actor ?? null, previousPolicyHash: row.previous_policy_hash ?? null, createdAt: row.ts }));
    return { policy_hash: hash, previous_policy_hash: row.previous_policy_hash ?? null, signed: row.signed === true, artifact };
  });
}

/** The entries after the last occurrence of `since` (all of them when since is omitted). */
export function chainSince(chain: ChainEntry[], since: string | undefined, currentHead: string): ChainEntry[] {
  if (since === undefined) return chain;
  for (let i = chain.length - 1; i >= 0; i--) {
    if (chain[i]?.policy_hash === since) return chain.slice(i + 1);
  }
  if (chain.length === 0 && since === currentHead) return [];
  throw new LinksError("unknown_policy_hash", `policy ${since} is not in this village's chain`);
}
