/**
 * A village's policy chain: each applied policy names the head it replaced. Pulling checks a run
 * of updates the way TUF checks metadata: every update signed by a quorum of the signers in
 * force at that point, for this village, unexpired, and following the head before it.
 */
import { datetimeToMs } from "./datetime.ts";
import { LinksError } from "./errors.ts";
import { verifyPolicyUpdate, type PolicyUpdate } from "./policy-update.ts";
import { requireQuorum } from "./quorum.ts";
import { readPolicy, type PolicyObject } from "./village-policy.ts";

export interface CheckedUpdate {
  update: PolicyUpdate;
  signers: string[];
}

export interface RunStart {
  villageId: string;
  headHash: string;
  headPolicy: PolicyObject;
  now: number;
}

export function isExpired(update: PolicyUpdate, now: number): boolean {
  return update.generation === "v2" && update.expires_at !== null && datetimeToMs(update.expires_at) <= now;
}

/** Checks one signed update against the head it claims to follow; returns its valid signers. */
export function checkSignedUpdate(update: PolicyUpdate, start: RunStart, label = "the update"): string[] {
  const v = verifyPolicyUpdate(update);
  if (!v.valid) throw new LinksError(v.code ?? "invalid_signature", `${label} (${update.policy_hash}) does not verify: ${v.detail}`);
  if (update.village_id !== start.villageId) {
    throw new LinksError("village_mismatch", `${label} is for village ${JSON.stringify(update.village_id)}, not ${start.villageId}`);
  }
  if (isExpired(update, start.now)) {
    throw new LinksError("policy_expired", `${label} (${update.policy_hash}) expired at ${update.generation === "v2" ? update.expires_at : "?"}`);
  }
  requireQuorum(readPolicy(start.headPolicy), readPolicy(update.policy), v.signers);
  return v.signers;
}

/** Checks a run of updates that would follow `start`, in order; throws on the first bad one. */
export function checkRun(start: RunStart, updates: PolicyUpdate[]): CheckedUpdate[] {
  let head = { hash: start.headHash, policy: start.headPolicy };
  return updates.map((update, i) => {
    const label = `update ${i + 1} of ${updates.length}`;
    const previous = update.generation === "v2" ? update.previous_policy_hash : null;
    if (previous !== head.hash) {
      throw new LinksError(
        "policy_lineage",
        `${label} (${update.policy_hash}) follows ${previous ?? "no recorded policy"}, but the head before it is ${head.hash}`,
      );
    }
    const signers = checkSignedUpdate(update, { ...start, headHash: head.hash, headPolicy: head.policy }, label);
    head = { hash: update.policy_hash, policy: update.policy };
    return { update, signers };
  });
}
