/**
 * Applying a policy to a village: village.json replaced under its lock, a history row appended
 * (the village's policy chain), the decision audited. Every path (local CLI, HTTP, pull) ends here.
 */
import { parseJson, toJsonText, type JsonValue } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { policyHash, policyUpdateToJson, type PolicyUpdate } from "../core/policy-update.ts";
import { auditPolicyHash, readPolicy, type PolicyObject, type VillagePolicy } from "../core/village-policy.ts";
import { appendAudit } from "./audit.ts";
import { lockedAppend, readJsonl } from "./jsonl.ts";
import type { DataPaths } from "./paths.ts";
import { updateVillage, withPolicy } from "./villages.ts";

export type PolicySource = "local" | "remote" | "pull";

export interface PolicyHistoryRow {
  policy: PolicyObject;
  policy_hash: string;
  previous_policy_hash: string | null;
  actor: string | null;
  ts: string;
  source: PolicySource | string;
  /** the signed artifact as received, or null for an unsigned local change */
  artifact: JsonValue | null;
  signers: string[];
}

export interface ApplyPolicyArgs {
  policy: PolicyObject;
  artifact: PolicyUpdate | null;
  signers?: string[];
  actor: string | null;
  source: PolicySource;
  /** Runs under the village lock against the policy in force; throws to refuse. */
  authorize?: (current: VillagePolicy, next: VillagePolicy, currentHash: string) => void;
}

export function applyPolicy(paths: DataPaths, vid: string, args: ApplyPolicyArgs): { policy_hash: string; previous_policy_hash: string } {
  const next = readPolicy(args.policy);
  return updateVillage(paths, vid, (village) => {
    const previousHash = policyHash(village.policy);
    args.authorize?.(readPolicy(village.policy), next, previousHash);
    const hash = policyHash(args.policy);
    const row: PolicyHistoryRow = {
      policy: args.policy,
      policy_hash: hash,
      previous_policy_hash: previousHash,
      actor: args.actor,
      ts: nowIso(),
      source: args.source,
      artifact: args.artifact ? policyUpdateToJson(args.artifact) : null,
      signers: args.signers ?? [],
    };
    const updated = withPolicy(village, args.policy);
    lockedAppend(paths.policyHistoryFile(vid), [toJsonText(row as unknown as JsonValue)]);
    appendAudit(paths, {
      action: "policy.apply",
      village_id: vid,
      actor: args.actor,
      reason: args.artifact ? `signed update (${args.source})` : `unsigned change (${args.source})`,
      policy_hash: auditPolicyHash(args.policy),
    });
    return { village: updated, result: { policy_hash: hash, previous_policy_hash: previousHash } };
  });
}

export function readPolicyHistory(paths: DataPaths, vid: string): PolicyHistoryRow[] {
  return readJsonl(paths.policyHistoryFile(vid), (line) => {
    const v = parseJson(line) as unknown as PolicyHistoryRow;
    if (typeof v !== "object" || v === null || typeof v.policy !== "object") throw new Error("not a policy history row");
    return v;
  });
}
