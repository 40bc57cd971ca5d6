/**
 * Signer quorum for policy updates: at least M distinct allowlisted key hashes with valid
 * signatures. An update that changes the signer set or threshold must satisfy both the policy in
 * force and the one it installs, so a minority can neither add itself nor lower the bar.
 */
import { LinksError } from "./errors.ts";
import type { VillagePolicy } from "./village-policy.ts";

export interface QuorumResult {
  required: number;
  allowlisted: string[];
  met: boolean;
}

export function quorumUnder(policy: VillagePolicy, signers: string[]): QuorumResult {
  const allow = new Set(policy.policy_signer_allowlist);
  const allowlisted = [...new Set(signers)].filter((s) => allow.has(s));
  const required = Math.max(1, policy.policy_signature_threshold_m);
  return { required, allowlisted, met: allow.size > 0 && allowlisted.length >= required };
}

function signerRulesChange(current: VillagePolicy, next: VillagePolicy): boolean {
  const a = [...current.policy_signer_allowlist].sort().join(",");
  const b = [...next.policy_signer_allowlist].sort().join(",");
  return a !== b || current.policy_signature_threshold_m !== next.policy_signature_threshold_m;
}

export interface UpdateQuorum extends QuorumResult {
  /** which policy's rules this result is for: the first one not met, else the policy in force */
  policy: "current" | "new";
}

/**
 * The quorum a signed update replacing `current` with `next` must meet: the policy in force's,
 * and the new policy's too when the update changes the signer rules. Returns the first one not
 * met, else the policy in force's (what `policy verify --village-id` reports).
 */
export function updateQuorum(current: VillagePolicy, next: VillagePolicy, signers: string[]): UpdateQuorum {
  const checks: Array<[UpdateQuorum["policy"], VillagePolicy]> = [["current", current]];
  if (signerRulesChange(current, next)) checks.push(["new", next]);
  for (const [which, policy] of checks) {
    const q = quorumUnder(policy, signers);
    if (!q.met) return { ...q, policy: which };
  }
  return { ...quorumUnder(current, signers), policy: "current" };
}

/** Throws unless a signed update with these valid signers may replace `current` with `next`. */
export function requireQuorum(current: VillagePolicy, next: VillagePolicy, signers: string[]): void {
  const q = updateQuorum(current, next, signers);
  if (q.met) return;
  const policy = q.policy === "current" ? current : next;
  if (policy.policy_signer_allowlist.length === 0) {
    throw new LinksError(
      "policy_signer_not_allowed",
      `the ${q.policy} policy has an empty policy_signer_allowlist: there is no signer to check the update against`,
    );
  }
  throw new LinksError(
    "policy_quorum_not_met",
    `the ${q.policy} policy needs ${q.required} distinct allowlisted signer(s); the update has ${q.allowlisted.length}`,
  );
}
